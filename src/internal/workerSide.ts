/**
 * The worker thread's side: runs the portable tasks the pool sends, and gives
 * them a `TaskPool` that forwards to the pool on the main thread, so a task
 * running here can submit tasks, await them, group them and `join`, and they
 * are counted like any other.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as NodeWorkerRunner from "@effect/platform-node/NodeWorkerRunner"
import * as WorkerRunner from "effect/workers/WorkerRunner"
import * as WorkerThreads from "node:worker_threads"
import { TaskPool } from "./service.ts"
import type { Collect, Engine, GroupOutcome, Handle, Items } from "./engine.ts"
import { byCalls } from "./forEach.ts"
import { HandleKey } from "./engine.ts"
import { type Holder, LocalInstances } from "./locals.ts"
import { libraryCodec, transferablesOf } from "./portable.ts"
import * as Protocol from "./protocol.ts"
import { lookup, resolve } from "./registry.ts"
import type { Stats } from "./stats.ts"
import { encodeCall, type TaskDef } from "./taskDef.ts"
import * as ThreadTelemetry from "./threadTelemetry.ts"
import type { WorkerData } from "./threads.ts"
import type { WireExit, WireFailure, WireResults } from "./wire.ts"

/** A task running on this thread: its id in the pool; it holds its worker-local instances. */
interface WorkerTask extends Holder {
  readonly id: number
  /** What it records for its caller, when its caller observes. */
  readonly recorded: ThreadTelemetry.WireTelemetry | undefined
}

/** Where a fiber on this thread stands: in which task, and in which group its submissions go (0: the task's own). */
interface WorkerPlace {
  readonly task: WorkerTask
  readonly group: number
}

const CurrentWorkerPlace = Context.Reference<WorkerPlace | undefined>("effect-lateral/CurrentWorkerPlace", {
  defaultValue: () => undefined
})

/** A handle on this thread for a task the pool runs. */
class RemoteHandle implements Handle<unknown, unknown> {
  declare readonly [HandleKey]: Handle<unknown, unknown>[typeof HandleKey]
  readonly engine: WorkerEngine
  readonly def: TaskDef
  readonly id: number
  constructor(engine: WorkerEngine, def: TaskDef, id: number) {
    this.engine = engine
    this.def = def
    this.id = id
  }
  get task(): string {
    return this.def.name
  }
}
Object.defineProperty(RemoteHandle.prototype, HandleKey, { value: HandleKey })

class WorkerEngine implements Engine {
  readonly mode = "parallel"
  readonly maxWorkers: number
  private readonly ask: (question: Protocol.Question) => Effect.Effect<unknown, unknown>
  readonly locals: LocalInstances
  /** Group bodies running here, by group id, to interrupt when their group fails. */
  readonly bodies = new Map<number, Fiber.Fiber<unknown, unknown>>()

  constructor(maxWorkers: number, ask: (question: Protocol.Question) => Effect.Effect<unknown, unknown>, scope: Scope.Scope) {
    this.maxWorkers = maxWorkers
    this.ask = ask
    this.locals = new LocalInstances(scope)
  }

  /** The place of the calling fiber; only code running for a task can use the pool from here. */
  private readonly place = (what: string) =>
    Effect.withFiber((fiber) => {
      const place = fiber.getRef(CurrentWorkerPlace)
      return place
        ? Effect.succeed(place)
        : Effect.die(new Error(`${what} on a worker thread works only inside a portable task`))
    })

  readonly submit = (_fiber: Fiber.Fiber<unknown, unknown>, def: TaskDef, args: ReadonlyArray<unknown>) =>
    Effect.gen({ self: this }, function*() {
      if (def.portable === undefined) {
        return yield* Effect.die(
          new Error(`Task "${def.name}" is not portable: a task running on a worker thread can only submit portable tasks`)
        )
      }
      const place = yield* this.place(`Submitting task "${def.name}"`)
      const encoded = encodeCall(def, args)
      if (Result.isFailure(encoded)) return yield* Effect.fail(encoded.failure)
      const id = yield* this.ask({
        _tag: "submit",
        parent: place.task.id,
        group: place.group,
        module: def.portable.module,
        name: def.name,
        payload: encoded.success
      })
      return new RemoteHandle(this, def, id as number) as Handle<unknown, unknown>
    })

  readonly forEach = (_fiber: Fiber.Fiber<unknown, unknown>, def: TaskDef, items: Items, keep: boolean) =>
    byCalls(this, def, items, keep)

  readonly await = (handle: Handle<unknown, unknown>) =>
    Effect.gen({ self: this }, function*() {
      const place = yield* this.place("Task.await")
      const remote = handle as RemoteHandle
      const exit = yield* this.ask({ _tag: "await", parent: place.task.id, run: remote.id })
      return yield* remote.def.portable!.decodeExit(exit as WireExit)
    })

  // Typed like the pool's `join`: the failure it may raise is the pool's first failure.
  readonly join = Effect.gen({ self: this }, function*() {
    const place = yield* this.place("TaskPool.join")
    yield* this.ask({ _tag: "join", parent: place.task.id })
  }) as Effect.Effect<void>

  readonly group = <A, E, R>(body: Effect.Effect<A, E, R>, collect: Collect): Effect.Effect<GroupOutcome<A>, E, R> =>
    Effect.gen({ self: this }, function*() {
      const place = yield* this.place("Task.group")
      const wanted = [...collect ?? []].map((def) => [def.portable!.module, def.name] as const)
      const group = (yield* Effect.orDie(this.ask({ _tag: "openGroup", parent: place.task.id, collect: wanted }))) as number
      const context = yield* Effect.context<R>()
      const bodyFiber = Effect.runForkWith(Context.add(context, CurrentWorkerPlace, { task: place.task, group }))(body)
      this.bodies.set(group, bodyFiber as Fiber.Fiber<unknown, unknown>)
      const bodyExit = yield* Effect.onInterrupt(Fiber.await(bodyFiber), () => Fiber.interrupt(bodyFiber))
      this.bodies.delete(group)
      // The pool tells a body that failed on its own from one its group interrupted.
      const bodyFailed = bodyExit._tag === "Failure"
      const results = (yield* this.ask({ _tag: "closeGroup", parent: place.task.id, group, bodyFailed })) as WireResults
      if (bodyExit._tag === "Failure") return yield* Effect.failCause(bodyExit.cause)
      const decoded = yield* Effect.forEach(results, ([module, name, values]) =>
        Effect.flatMap(resolve(module, name), (def) =>
          Effect.map(Effect.forEach(values, (value) => def.portable!.decodeExit(value)), (successes) => [def, successes] as const)))
      const successes = new Map<TaskDef, ReadonlyArray<unknown>>(decoded)
      return { value: bodyExit.value, successesOf: (def: TaskDef) => successes.get(def) ?? [] }
    }) as Effect.Effect<GroupOutcome<A>, E, R>

  readonly local = <A, E, R>(key: object, acquire: Effect.Effect<A, E, R>) =>
    Effect.flatMap(this.place("WorkerLocal"), (place) => this.locals.get(place.task, key, acquire))

  readonly stats = Effect.orDie(Effect.suspend(() => this.ask({ _tag: "stats" }))) as Effect.Effect<Stats>

  // The pool closes on the main thread, after this thread's tasks: reports belong there.
  readonly closed = Effect.never
  readonly watch = (_reporter: Effect.Effect<void>) =>
    Effect.die(new Error("TaskPool.onProgress works on the main thread, not inside a task on a worker thread"))
}

/** Decodes a failure the pool sent, with the schemas of the task it belongs to. */
const decodeFailure = ([module, name, exit]: WireFailure): Effect.Effect<Exit.Exit<unknown, unknown>> =>
  module === "" ? Effect.succeed(libraryCodec.decodeExit(exit)) : Effect.map(resolve(module, name), (def) => def.portable!.decodeExit(exit))

/** Serves the pool until it closes this thread. */
const serve = Effect.gen(function*() {
  const data = WorkerThreads.workerData as WorkerData
  const runner = yield* (yield* WorkerRunner.WorkerRunnerPlatform).start<Protocol.FromWorker, Protocol.ToWorker>()
  const scope = yield* Effect.scope

  // Questions to the pool, answered by `Reply` messages.
  let nextRequest = 0
  const answers = new Map<number, (reply: Protocol.WireReply) => void>()
  const ask = (question: Protocol.Question) =>
    Effect.callback<unknown, unknown>((resume) => {
      const request = ++nextRequest
      answers.set(request, (reply) => {
        if (reply[0] === 0) return resume(Effect.succeed(reply[1]))
        resume(Effect.flatMap(decodeFailure(reply[1]), (exit) => exit))
      })
      runner.sendUnsafe(0, [Protocol.Ask, request, question])
      return Effect.sync(() => answers.delete(request))
    })

  // Closing releases the worker-local instances (this scope) after every task here has ended (below).
  const engine = new WorkerEngine(data.maxWorkers, ask, yield* Scope.fork(scope))
  const base = Context.add(yield* Effect.context<never>(), TaskPool, engine)
  const running = new Map<number, Fiber.Fiber<unknown, unknown>>()
  yield* Effect.addFinalizer(() => Fiber.interruptAll(running.values()))

  // Results go back in batches: everything that finished in the same turn of the event loop, or,
  // when tasks run long without yielding, whatever finished in the last
  // millisecond, so that the pool refills this thread while it works.
  let doneIds: Array<number> = []
  let doneExits: Array<WireExit> = []
  /** Buffers of results that move back instead of being copied (tasks with `transfer`), by result. */
  let doneTransfers: Array<Array<ArrayBuffer>> = []
  let doneTelemetry: Array<readonly [number, ThreadTelemetry.WireTelemetry]> = []
  let flushScheduled = false
  let lastFlush = performance.now()
  const flush = () => {
    flushScheduled = false
    lastFlush = performance.now()
    if (doneIds.length === 0) return
    const ids = doneIds
    const exits = doneExits
    const transfers = doneTransfers
    const telemetry = doneTelemetry
    doneIds = []
    doneExits = []
    doneTransfers = []
    doneTelemetry = []
    if (telemetry.length > 0) runner.sendUnsafe(0, [Protocol.Done, [], [], telemetry])
    try {
      runner.sendUnsafe(0, [Protocol.Done, ids, exits], transfers.flat())
    } catch {
      // A result that cannot be copied: send them one by one, that one as a defect.
      for (let i = 0; i < ids.length; i++) {
        try {
          runner.sendUnsafe(0, [Protocol.Done, [ids[i]!], [exits[i]!]], transfers[i])
        } catch (error) {
          const defect = new Error(`The task's result cannot be copied back from its worker thread: ${String(error)}`)
          runner.sendUnsafe(0, [Protocol.Done, [ids[i]!], [libraryCodec.encodeExit(Exit.die(defect))]])
        }
      }
    }
  }
  const finished = (task: WorkerTask, def: TaskDef | undefined, exit: Exit.Exit<unknown, unknown>) => {
    const id = task.id
    running.delete(id)
    engine.locals.release(task)
    const wire = def ? def.portable!.encodeExit(exit) : libraryCodec.encodeExit(exit)
    if (task.recorded !== undefined) doneTelemetry.push([id, task.recorded])
    doneIds.push(id)
    doneExits.push(wire)
    doneTransfers.push(def?.portable!.transfer && wire[0] === 0 ? transferablesOf(wire[1]) : [])
    if (performance.now() - lastFlush > 1) return flush()
    if (!flushScheduled) {
      flushScheduled = true
      setImmediate(flush)
    }
  }

  const start = (id: number, def: TaskDef, group: number, payload: unknown, caller: ThreadTelemetry.WireCaller | undefined) => {
    let effect: Effect.Effect<unknown, unknown>
    try {
      effect = def.run([def.portable!.decodePayload(payload)]) as Effect.Effect<unknown, unknown>
    } catch (defect) {
      effect = Effect.die(defect)
    }
    const observed = caller && { caller, recorded: [[], []] as ThreadTelemetry.WireTelemetry }
    const task: WorkerTask = { id, locals: undefined, recorded: observed?.recorded }
    const context = Context.add(base, CurrentWorkerPlace, { task, group })
    const fiber = Effect.runForkWith(observed ? ThreadTelemetry.recording(context, observed.caller, observed.recorded) : context)(effect)
    const exit = fiber.pollUnsafe()
    if (exit) return finished(task, def, exit)
    running.set(id, fiber)
    fiber.addObserver((exit) => finished(task, def, exit))
  }

  // Tasks waiting for their module to import, and those of them interrupted meanwhile.
  const importing = new Set<number>()
  const cancelled = new Set<number>()

  const runBatch = (batch: Protocol.RunColumns) => {
    for (let i = 0; i < batch.ids.length; i++) {
      const id = batch.ids[i]!
      const module = batch.modules[i]!
      const name = batch.names[i]!
      const def = lookup(module, name)
      if (def) {
        start(id, def, batch.groups[i]!, batch.payloads[i], batch.callers[i])
        continue
      }
      // First task of a module on this thread: import it, then run.
      const group = batch.groups[i]!
      const payload = batch.payloads[i]
      const caller = batch.callers[i]
      importing.add(id)
      Effect.runFork(resolve(module, name).pipe(
        Effect.matchCause({
          onSuccess: (def) => {
            importing.delete(id)
            if (!cancelled.delete(id)) start(id, def, group, payload, caller)
          },
          onFailure: (cause) => {
            importing.delete(id)
            if (!cancelled.delete(id)) finished({ id, locals: undefined, recorded: undefined }, undefined, Exit.failCause(cause))
          }
        })
      ))
    }
  }

  // The pool waits for an interrupted task's end: one still importing its module ends at once.
  const interrupt = (id: number) => {
    if (!importing.has(id)) return running.get(id)?.interruptUnsafe()
    cancelled.add(id)
    finished({ id, locals: undefined, recorded: undefined }, undefined, Exit.interrupt())
  }

  yield* runner.run<void, never, never>((_port, message) => {
    switch (message[0]) {
      case Protocol.RunBatch:
        return runBatch(message[1])
      case Protocol.Interrupt:
        return interrupt(message[1])
      case Protocol.Reply: {
        const answer = answers.get(message[1])
        answers.delete(message[1])
        return answer?.(message[2])
      }
      case Protocol.InterruptBody:
        return engine.bodies.get(message[1])?.interruptUnsafe()
    }
  })
}).pipe(Effect.scoped)

/** Serves the pool on this thread, then calls `exit`. */
export const serveThread = (exit: () => void): void => {
  Effect.runFork(serve.pipe(Effect.provide(NodeWorkerRunner.layer))).addObserver(exit)
}

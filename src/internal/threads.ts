/**
 * The pool's worker threads, on `effect/workers` and `NodeWorker`.
 *
 * Lane `i` sends its portable tasks to thread `i % threads`, so a lane's
 * resources live on one thread. The threads start together with the first
 * portable task; a thread that died starts again with its next task. Tasks
 * dispatched in the same tick travel in one message per thread; results come
 * back the same way. A thread that dies fails the tasks it held with
 * `WorkerCrashError`.
 *
 * @internal
 */
import * as NodeWorker from "@effect/platform-node/NodeWorker"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Worker from "effect/workers/Worker"
import type * as WorkerRunner from "effect/workers/WorkerRunner"
import type { WorkerError } from "effect/workers/WorkerError"
import * as WorkerThreads from "node:worker_threads"
import { TaskPayloadError, WorkerCrashError } from "../TaskError.ts"
import type { Run } from "./model.ts"
import type { WireExit } from "./portable.ts"
import * as Protocol from "./protocol.ts"

// `@effect/platform-node` needs Node 22.19 or later. On older versions a task
// module would also lack `import.meta.main` and native TypeScript, and a
// program would misbehave without a word: say so at import instead.
const [major = 0, minor = 0] = process.versions.node.split(".").map(Number)
if (major < 22 || (major === 22 && minor < 19)) {
  throw new Error(`effect-lateral needs Node.js 22.19 or later; this is Node.js ${process.versions.node}.`)
}

export interface ThreadOptions {
  readonly threads: number
  readonly maxWorkers: number
  readonly resourceLimits: WorkerThreads.ResourceLimits | undefined
}

/** What the threads need from the pool: answers to their tasks' questions. */
export interface ThreadHost {
  readonly answer: (question: Protocol.Question) => Effect.Effect<Protocol.WireReply>
}

/** The data a worker thread is started with. */
export interface WorkerData {
  readonly lateral: true
  readonly thread: number
  readonly maxWorkers: number
}

/**
 * Whether this is one of a pool's worker threads. A pool made here (say, by a
 * task module that runs its program when imported) gets no threads of its own,
 * so a mistake cannot start threads without end.
 */
export const insideWorkerThread: boolean = (WorkerThreads.workerData as WorkerData | undefined)?.lateral === true

// The entry has this module's extension: `.ts` from source, `.js` from a build.
const entry = new URL(`./workerEntry${import.meta.url.slice(import.meta.url.lastIndexOf("."))}`, import.meta.url)

/** One task sent to a thread, until its result comes back. */
interface Pending {
  readonly run: Run
  readonly resume: (effect: Effect.Effect<unknown, unknown>) => void
}

type ThreadWorker = Worker.Worker<Protocol.FromWorker, Protocol.ToWorker>

/** One of the pool's threads, and the worker that currently serves it. */
class Thread {
  readonly index: number
  worker: ThreadWorker | undefined = undefined
  /** The worker's Node thread, to post to once it is ready. */
  port: WorkerThreads.Worker | undefined = undefined
  /** Set once the worker has said it is ready; tasks wait in `batch` until then. */
  ready = false
  readonly pending = new Map<number, Pending>()
  batch: Protocol.RunColumns = emptyBatch()
  flushScheduled = false
  constructor(index: number) {
    this.index = index
  }

  /**
   * Posts a message in the workers' own framing (`WorkerRunner.PlatformMessage`).
   * Posting ourselves, once the worker is ready, makes a value that cannot be
   * copied fail here, for its task, instead of inside `Worker.send`'s buffer,
   * which would stop the whole worker.
   */
  send(message: Protocol.ToWorker): unknown {
    if (!this.ready || this.port === undefined) return undefined
    try {
      this.port.postMessage([0, message] satisfies WorkerRunner.PlatformMessage<Protocol.ToWorker>)
      return undefined
    } catch (error) {
      return error
    }
  }
}

const emptyBatch = (): Protocol.RunColumns => ({ ids: [], modules: [], names: [], lanes: [], groups: [], payloads: [] })

const column = <K extends keyof Protocol.RunColumns>(batch: Protocol.RunColumns, key: K, i: number) => [batch[key][i]] as Protocol.RunColumns[K]

export class ThreadPool {
  private readonly options: ThreadOptions
  private readonly host: ThreadHost
  private readonly threads: Array<Thread>
  private readonly platform: Worker.WorkerPlatform["Service"]
  private readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => unknown
  private nextTask = 0
  private nextWorker = 0
  private started = false
  private readonly endCallbacks = new Map<number, Array<() => void>>()

  constructor(
    options: ThreadOptions,
    host: ThreadHost,
    platform: Worker.WorkerPlatform["Service"],
    runFork: <A, E>(effect: Effect.Effect<A, E>) => unknown
  ) {
    this.options = options
    this.host = host
    this.platform = platform
    this.runFork = runFork
    this.threads = Array.from({ length: options.threads }, (_, i) => new Thread(i))
  }

  /** One attempt of `run` on its lane's thread; interrupting it interrupts the task there. */
  dispatch(run: Run, group: number): Effect.Effect<unknown, unknown> {
    return Effect.callback<unknown, unknown>((resume) => {
      const thread = this.threads[run.lane!.index % this.threads.length]!
      if (thread.worker === undefined) {
        // The first portable task starts every thread, so that they start in parallel.
        if (this.started) this.start(thread)
        else {
          this.started = true
          for (const each of this.threads) this.start(each)
        }
      }
      const id = ++this.nextTask
      thread.pending.set(id, { run, resume })
      this.enqueue(thread, id, run, group)
      return Effect.sync(() => this.cancel(thread, id))
    })
  }

  private enqueue(thread: Thread, id: number, run: Run, group: number): void {
    const batch = thread.batch
    batch.ids.push(id)
    batch.modules.push(run.def.portable!.module)
    batch.names.push(run.def.name)
    batch.lanes.push(run.lane!.index)
    batch.groups.push(group)
    batch.payloads.push(run.encoded)
    if (thread.ready && !thread.flushScheduled) {
      thread.flushScheduled = true
      queueMicrotask(() => this.flush(thread))
    }
  }

  /** Sends the thread's batch; a task whose payload cannot be cloned fails alone, with `TaskPayloadError`. */
  private flush(thread: Thread): void {
    thread.flushScheduled = false
    const batch = thread.batch
    if (!thread.ready || batch.ids.length === 0) return
    thread.batch = emptyBatch()
    if (thread.send([Protocol.RunBatch, batch]) === undefined) return
    for (let i = 0; i < batch.ids.length; i++) {
      const one: Protocol.RunColumns = {
        ids: column(batch, "ids", i),
        modules: column(batch, "modules", i),
        names: column(batch, "names", i),
        lanes: column(batch, "lanes", i),
        groups: column(batch, "groups", i),
        payloads: column(batch, "payloads", i)
      }
      const error = thread.send([Protocol.RunBatch, one])
      if (error !== undefined) {
        this.settle(thread, batch.ids[i]!, (run) => Effect.fail(new TaskPayloadError({ task: run.def.name, reason: String(error) })))
      }
    }
  }

  /** An interrupted task: drop it if it has not left yet, or tell its thread. */
  private cancel(thread: Thread, id: number): void {
    if (!thread.pending.delete(id)) return
    this.ended(id)
    const index = thread.batch.ids.indexOf(id)
    if (index < 0) return void thread.send([Protocol.Interrupt, id])
    for (const key of Object.keys(thread.batch) as Array<keyof Protocol.RunColumns>) thread.batch[key].splice(index, 1)
  }

  /** Ends a pending task with `result`. */
  private settle(thread: Thread, id: number, result: (run: Run) => Effect.Effect<unknown, unknown>): void {
    const pending = thread.pending.get(id)
    if (pending === undefined) return // interrupted meanwhile
    thread.pending.delete(id)
    this.ended(id)
    pending.resume(result(pending.run))
  }

  /** How many threads have a worker now. */
  alive(): number {
    return this.threads.filter((thread) => thread.worker !== undefined).length
  }

  /** The run behind a task id a worker thread refers to. */
  runOf(id: number): Run | undefined {
    for (const thread of this.threads) {
      const pending = thread.pending.get(id)
      if (pending) return pending.run
    }
    return undefined
  }

  /** Calls `f` once the task `id` has finished on its thread (or its thread died). */
  onDispatchEnd(id: number, f: () => void): void {
    const callbacks = this.endCallbacks.get(id)
    if (callbacks) callbacks.push(f)
    else this.endCallbacks.set(id, [f])
  }

  private ended(id: number): void {
    const callbacks = this.endCallbacks.get(id)
    if (callbacks === undefined) return
    this.endCallbacks.delete(id)
    for (const f of callbacks) f()
  }

  /** Sends an interruption for a group body running on the thread of `lane`. */
  interruptBody(lane: number, group: number): void {
    this.threads[lane % this.threads.length]!.send([Protocol.InterruptBody, group])
  }

  private start(thread: Thread): void {
    const workerData: WorkerData = { lateral: true, thread: thread.index, maxWorkers: this.options.maxWorkers }
    const spawn = () =>
      thread.port = new WorkerThreads.Worker(entry, {
        workerData,
        ...(this.options.resourceLimits ? { resourceLimits: this.options.resourceLimits } : {})
      })
    const worker = Effect.runSync(
      this.platform.spawn<Protocol.FromWorker, Protocol.ToWorker>(++this.nextWorker).pipe(
        Effect.provideService(Worker.Spawner, spawn)
      )
    )
    thread.worker = worker
    thread.ready = false
    const ready = Effect.sync(() => {
      thread.ready = true
      this.flush(thread)
    })
    this.runFork(
      worker.run((message) => this.receive(thread, worker, message), { onSpawn: ready }).pipe(
        Effect.onExit((exit) => Effect.sync(() => this.lost(thread, worker, exit)))
      )
    )
  }

  private receive(thread: Thread, worker: ThreadWorker, message: Protocol.FromWorker): Effect.Effect<void> {
    if (message[0] === Protocol.Done) {
      const [, ids, exits] = message
      for (let i = 0; i < ids.length; i++) this.settle(thread, ids[i]!, (run) => decode(run, exits[i]!))
      return Effect.void
    }
    const [, request, question] = message
    // Answered in the pool's own fibers, not the worker's: an answer may wait
    // on tasks, and must not hold up the handling of the worker's death.
    this.runFork(Effect.map(this.host.answer(question), (reply) => {
      // A thread that died since it asked gets no answer.
      if (thread.worker === worker) thread.send([Protocol.Reply, request, reply])
    }))
    return Effect.void
  }

  /** The thread's worker is gone: fail what it held, and let the next task start a new one. */
  private lost(thread: Thread, worker: ThreadWorker, exit: Exit.Exit<never, WorkerError>): void {
    if (thread.worker !== worker) return
    thread.worker = undefined
    thread.port = undefined
    thread.ready = false
    thread.batch = emptyBatch()
    const reason = crashReason(exit)
    // Resuming a task may submit new ones to this thread: take the lost ones out first.
    const lost = [...thread.pending.keys()]
    for (const id of lost) {
      this.settle(thread, id, (run) => Effect.fail(new WorkerCrashError({ task: run.def.name, thread: thread.index, reason })))
    }
  }
}

const decode = (run: Run, wire: WireExit): Effect.Effect<unknown, unknown> => {
  try {
    return run.def.portable!.decodeExit(wire)
  } catch (error) {
    return Effect.die(new Error(`Task "${run.def.name}" sent back a result that cannot be decoded: ${String(error)}`))
  }
}

/** Says how a worker died, from what NodeWorker reported (the run of a worker only ends by failing). */
const crashReason = (exit: Exit.Exit<never, WorkerError>): string => {
  const error = exit._tag === "Failure" ? exit.cause.reasons.find((reason) => reason._tag === "Fail") : undefined
  if (error === undefined) return "was stopped"
  const workerError = (error as { readonly error: WorkerError }).error
  const cause = workerError.reason.cause as { readonly code?: string; readonly message?: string } | undefined
  if (cause?.code === "ERR_WORKER_OUT_OF_MEMORY") return "ran out of memory"
  if (cause?.message) return `crashed: ${cause.message}`
  return workerError.reason.message.replace("The worker has exited", "exited")
}

/** Builds the threads' pool in the current scope. No thread starts until a portable task runs. */
export const make = Effect.fnUntraced(function*(options: ThreadOptions, host: ThreadHost) {
  const runFork = yield* FiberSet.makeRuntime<never, unknown, unknown>()
  const platform = yield* Effect.provide(Worker.WorkerPlatform.useSync((platform) => platform), NodeWorker.layerPlatform)
  return new ThreadPool(options, host, platform, runFork as <A, E>(effect: Effect.Effect<A, E>) => unknown)
})

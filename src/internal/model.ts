/**
 * The data both pools share: task definitions, submitted runs, groups, lanes
 * and the engine interface that `Task`, `TaskPool` and `WorkerLocal` call.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import type { Portable } from "./portable.ts"
import type { WireResults } from "./protocol.ts"

/** What the pools need to know about a task declared with `Task.make`. */
export interface TaskDef {
  readonly name: string
  /** One attempt of one call, in the current thread. */
  readonly run: (args: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown, unknown>
  /** Wraps one attempt (in this thread or on a worker) with the task's `timeout` and `retry`. */
  readonly attempts: (attempt: Effect.Effect<unknown, unknown, unknown>) => Effect.Effect<unknown, unknown, unknown>
  /** Whether a failed attempt is retried. */
  readonly retries: boolean
  /** Set for tasks that can run on a worker thread. */
  readonly portable: Portable | undefined
}

/** Counters of a pool, as `TaskPool.stats` reports them. */
export interface Stats {
  readonly submitted: number
  readonly succeeded: number
  readonly failed: number
  readonly interrupted: number
  readonly running: number
  readonly queued: number
  /** Worker threads alive now (they start with the first portable task). */
  readonly threads: number
}

/** The counters both pools keep. */
export class Counters {
  submitted = 0
  succeeded = 0
  failed = 0
  interrupted = 0
  running = 0

  /** Counts a finished run; returns its cause if it failed (an interruption is not a failure). */
  finished(exit: Exit.Exit<unknown, unknown>): Cause.Cause<unknown> | undefined {
    if (exit._tag === "Success") {
      this.succeeded++
      return undefined
    }
    if (Cause.hasInterruptsOnly(exit.cause)) {
      this.interrupted++
      return undefined
    }
    this.failed++
    return exit.cause
  }

  stats(queued: number, threads: number): Stats {
    return {
      submitted: this.submitted,
      succeeded: this.succeeded,
      failed: this.failed,
      interrupted: this.interrupted,
      running: this.running,
      queued,
      threads
    }
  }
}

/** The operations behind the public API, implemented by the parallel and the serial pool. */
export interface Engine {
  readonly mode: "parallel" | "serial"
  readonly maxWorkers: number
  readonly submit: (
    fiber: Fiber.Fiber<unknown, unknown>,
    task: TaskDef,
    args: ReadonlyArray<unknown>
  ) => Effect.Effect<Handle<unknown, unknown>, unknown>
  readonly await: (handle: Handle<unknown, unknown>) => Effect.Effect<unknown, unknown>
  readonly group: <A, E, R>(body: Effect.Effect<A, E, R>) => Effect.Effect<GroupOutcome<A>, E, R>
  readonly join: Effect.Effect<void>
  readonly local: <A, E, R>(key: object, acquire: Effect.Effect<A, E, R>) => Effect.Effect<A, E, Exclude<R, Scope.Scope>>
  readonly stats: Effect.Effect<Stats>
  /** Completes once the pool has closed: every task has finished. */
  readonly closed: Effect.Effect<void>
  /** Runs `reporter` beside the pool; the pool's close waits for it to end (after `closed`). */
  readonly watch: (reporter: Effect.Effect<void>) => Effect.Effect<void>
}

/**
 * The fibers that report on a pool. They run until the pool has closed; the
 * close waits for them, so that their last report sees the final counters.
 */
export class Watchers {
  private readonly signal = Deferred.makeUnsafe<void>()
  private readonly fibers = new Set<Fiber.Fiber<void>>()
  readonly closed: Effect.Effect<void> = Deferred.await(this.signal)

  readonly watch = (reporter: Effect.Effect<void>): Effect.Effect<void> =>
    Effect.map(Effect.forkDetach(reporter, { startImmediately: true }), (fiber) => {
      this.fibers.add(fiber)
    })

  /** Signals `closed`, then waits for the reporters. */
  readonly close: Effect.Effect<void> = Effect.suspend(() => {
    Deferred.doneUnsafe(this.signal, Effect.void)
    return Effect.asVoid(Fiber.awaitAll(this.fibers))
  })
}

/** A finished group: the body's value and the successes of the group's tasks, by task. */
export interface GroupOutcome<A> {
  readonly value: A
  readonly successesOf: (task: TaskDef) => ReadonlyArray<unknown>
}

/** A handle's phantom types; `Run` is the only implementation. */
export interface Handle<out A, out E = never> {
  readonly task: string
  readonly [HandleKey]: { readonly _A: (_: never) => A; readonly _E: (_: never) => E }
}

/** The key that marks a value as a handle. */
export const HandleKey: unique symbol = Symbol.for("effect-lateral/Task/Handle")

/**
 * A lane is one of the pool's `maxWorkers` places where a task can run. A task
 * keeps its lane for its whole life: it lends it out while it waits on the
 * pool, and gets the same lane back before it goes on. So a lane's
 * worker-local instances are never used by two running tasks at once.
 */
export class Lane {
  busy = false
  /** Tasks that waited on this lane and want it back; they go before queued tasks. */
  readonly resumers: Array<() => void> = []
  /** Worker-local instances, by `WorkerLocal` key. */
  readonly locals = new Map<object, Deferred.Deferred<unknown, unknown>>()
  readonly index: number
  constructor(index: number) {
    this.index = index
  }

  /** The instance of `key` on this lane, acquired into `scope` on first use. */
  local<A, E, R>(key: object, acquire: Effect.Effect<A, E, R>, scope: Scope.Scope): Effect.Effect<A, E, Exclude<R, Scope.Scope>> {
    const found = this.locals.get(key) as Deferred.Deferred<A, E> | undefined
    if (found) return Deferred.await(found)
    const deferred = Deferred.makeUnsafe<A, E>()
    this.locals.set(key, deferred as Deferred.Deferred<unknown, unknown>)
    return acquire.pipe(
      Scope.provide(scope),
      Effect.onExit((exit) =>
        Effect.sync(() => {
          // A failed acquisition is not cached: the next use tries again.
          if (exit._tag === "Failure") this.locals.delete(key)
          Deferred.doneUnsafe(deferred, exit)
        })
      ),
      Effect.uninterruptible
    )
  }
}

/**
 * Where a fiber's submissions go: the run they descend from (if the fiber
 * works for a task) and the group they join. A run is the place of its own
 * fiber; a `Task.group` body gets a place of its own.
 */
export interface Place {
  readonly run: Run | undefined
  readonly group: Group
}

/**
 * A submitted task and its handle. Fields are assigned in the constructor
 * (not as class fields) and rare ones start undefined, because a run is
 * allocated on the hot path of every submit.
 */
export class Run implements Handle<unknown, unknown>, Place {
  declare readonly [HandleKey]: Handle<unknown, unknown>[typeof HandleKey]
  declare readonly engine: Engine
  declare readonly def: TaskDef
  declare readonly args: ReadonlyArray<unknown>
  /** The submitter's context: the task runs with its services. */
  declare readonly context: Context.Context<never>
  declare readonly group: Group
  /** The run that submitted this one, if it was submitted inside a task. */
  declare readonly parent: Run | undefined
  /** The `join` epoch of a top-level run. */
  declare readonly epoch: Epoch | undefined
  /** A portable task's payload, encoded at submit. */
  declare encoded: unknown
  /** The run's exit once it has finished. */
  declare exit: Exit.Exit<unknown, unknown> | undefined
  /** Set while the run's fiber is suspended (not for runs that finish synchronously). */
  declare fiber: Fiber.Fiber<unknown, unknown> | undefined
  /** The lane the run started on (undefined while queued); it keeps it for life. */
  declare lane: Lane | undefined
  /** False while the run has given its lane up to wait. */
  declare holdsLane: boolean
  /** Set while the run has asked for its lane back and another run holds it. */
  declare taking: (() => void) | undefined
  /** Fibers of the run waiting for its lane to come back. */
  declare laneWaiters: Array<() => void> | undefined
  /** This run plus its children whose subtrees have not settled (see `settle`). */
  declare subtree: number
  declare waiters: Array<() => void> | undefined
  /** Woken when `subtree` drops back to 1 (for `TaskPool.join` inside a task). */
  declare childWaiters: Array<() => void> | undefined
  /** Woken when the run starts (for `blockWhenSaturated`). */
  declare onStart: (() => void) | undefined
  /** Links of the group's list of suspended runs. */
  declare prev: Run | undefined
  declare next: Run | undefined
  declare nextQueued: Run | undefined

  constructor(
    engine: Engine,
    def: TaskDef,
    args: ReadonlyArray<unknown>,
    context: Context.Context<never>,
    group: Group,
    parent: Run | undefined,
    epoch: Epoch | undefined
  ) {
    this.engine = engine
    this.def = def
    this.args = args
    this.context = context
    this.group = group
    this.parent = parent
    this.epoch = epoch
    this.encoded = undefined
    this.exit = undefined
    this.fiber = undefined
    this.lane = undefined
    this.holdsLane = false
    this.taking = undefined
    this.laneWaiters = undefined
    this.subtree = 1
    this.waiters = undefined
    this.childWaiters = undefined
    this.onStart = undefined
    this.prev = undefined
    this.next = undefined
    this.nextQueued = undefined
  }

  get run(): Run {
    return this
  }

  get task(): string {
    return this.def.name
  }
}
// On the prototype, so that `Task.isHandle` works at no cost per run.
Object.defineProperty(Run.prototype, HandleKey, { value: HandleKey })

/** Wakes every callback in a waiter list. */
export const wakeAll = (waiters: Array<() => void> | undefined): void => {
  if (waiters === undefined || waiters.length === 0) return
  for (const wake of waiters.splice(0)) wake()
}

/** Removes one callback from a waiter list (when the waiting fiber is interrupted). */
export const removeWaiter = (waiters: Array<() => void> | undefined, waiter: () => void): void => {
  const index = waiters ? waiters.indexOf(waiter) : -1
  if (index >= 0) waiters!.splice(index, 1)
}

/**
 * The tasks submitted inside one `Task.group` body (and their descendants), or,
 * for the pool's root group, every task submitted outside any group. The
 * first failure of a group's task fails the group.
 *
 * `pending` counts every unfinished run of the group; the intrusive list
 * (`first`/`last`) holds only the suspended ones, so that a run that finishes
 * synchronously never touches it.
 */
export class Group {
  /** The pool the group belongs to. */
  readonly owner: Engine
  /** The group's id for worker threads (0 until one needs it). */
  id = 0
  pending = 0
  failure: Cause.Cause<unknown> | undefined = undefined
  /** The task whose failure `failure` is, so that it can be encoded for a worker thread. */
  failedTask: TaskDef | undefined = undefined
  first: Run | undefined = undefined
  last: Run | undefined = undefined
  /** Woken when `pending` reaches 0 or the group fails. */
  readonly waiters: Array<() => void> = []
  /** Interrupts the group's body (a fiber here, or on a worker thread) when the group fails. */
  interruptBody: (() => void) | undefined = undefined
  closed = false
  private readonly successes: Map<TaskDef, Array<unknown>> | undefined

  constructor(owner: Engine, collectResults: boolean) {
    this.owner = owner
    this.successes = collectResults ? new Map() : undefined
  }

  link(run: Run): void {
    run.prev = this.last
    if (this.last) this.last.next = run
    else this.first = run
    this.last = run
  }

  unlink(run: Run): void {
    if (run.prev) run.prev.next = run.next
    else this.first = run.next
    if (run.next) run.next.prev = run.prev
    else this.last = run.prev
    run.prev = run.next = undefined
  }

  /** The suspended runs, copied so that interrupting them may change the list. */
  suspended(): Array<Run> {
    const runs: Array<Run> = []
    for (let run = this.first; run; run = run.next) runs.push(run)
    return runs
  }

  get collectsResults(): boolean {
    return this.successes !== undefined
  }

  recordSuccess(def: TaskDef, value: unknown): void {
    if (this.successes === undefined) return
    const values = this.successes.get(def)
    if (values) values.push(value)
    else this.successes.set(def, [value])
  }

  /** The successes, encoded for a worker thread (the group's tasks are then all portable). */
  wireResults(): WireResults {
    return [...(this.successes ?? [])].map(([task, values]) =>
      [task.portable!.module, task.name, values.map((value) => task.portable!.encodeExit(Exit.succeed(value)))] as const
    )
  }

  outcome<A>(value: A): GroupOutcome<A> {
    const successes = this.successes
    return { value, successesOf: (task) => successes?.get(task) ?? [] }
  }
}

/**
 * Top-level runs submitted between two `TaskPool.join` calls. A join waits for
 * the epochs sealed before it, so tasks submitted after it do not delay it.
 */
export class Epoch {
  count = 0
  readonly waiters: Array<() => void> = []
}

/** The current fiber's place: inside a task, inside a `Task.group` body, or (undefined) neither. */
export const CurrentPlace = Context.Reference<Place | undefined>("effect-lateral/CurrentPlace", {
  defaultValue: () => undefined
})

/**
 * A submitted task: the record a pool keeps of one call, which is also the
 * call's handle.
 *
 * @internal
 */
import * as Context from "effect/Context"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type * as Tracer from "effect/Tracer"
import { type Engine, type Handle, HandleKey } from "./engine.ts"
import type { Group, Linked } from "./group.ts"
import type { Counted, Epoch } from "./joins.ts"
import type { Holder } from "./locals.ts"
import type { TaskDef } from "./taskDef.ts"
import type { Sink, TaskFigures } from "./telemetry.ts"
import type { Waiters } from "./waiters.ts"

/**
 * Where a fiber's submissions go: the run they descend from (if the fiber
 * works for a task) and the group they join. A run is the place of its own
 * fibers; a `Task.group` body gets a place of its own.
 */
export interface Place {
  readonly run: Run | undefined
  readonly group: RunGroup
}

/** A group of runs. */
export type RunGroup = Group<Run>

/** The current fiber's place: inside a task, inside a `Task.group` body, or (undefined) neither. */
export const CurrentPlace = Context.Reference<Place | undefined>("effect-lateral/CurrentPlace", {
  defaultValue: () => undefined
})

/**
 * A run is allocated on the hot path of every submit, so the fields every run
 * uses are set in the constructor and the rare ones live on the prototype
 * until a run needs them.
 */
export class Run implements Handle<unknown, unknown>, Place, Holder, Counted, Linked<Run> {
  declare readonly [HandleKey]: Handle<unknown, unknown>[typeof HandleKey]
  declare readonly engine: Engine
  declare readonly def: TaskDef
  declare readonly args: ReadonlyArray<unknown>
  /** The submitter's context: the task runs with its services. */
  declare readonly context: Context.Context<never>
  declare readonly group: RunGroup
  /** The run this one counts under for `join` (see `Joins`). */
  declare readonly parent: Run | undefined
  /** The `join` epoch of a top-level run. */
  declare epoch: Epoch | undefined
  /** A portable task's payload, encoded at submit. */
  declare readonly encoded: unknown
  /** The run's exit once it has finished. */
  declare exit: Exit.Exit<unknown, unknown> | undefined
  /** The lane the run holds, or -1 (queued, waiting on the pool, or finished). */
  declare lane: number
  /** This run plus its children whose subtrees have not settled (see `Joins`). */
  declare subtree: number
  // set by `telemetry.submitted` right after construction
  /** The run's id in this process, for log annotations and span attributes. */
  declare id: number
  declare sink: Sink
  declare figures: TaskFigures
  /** `performance.now()` at start (0 until then). */
  declare startedAt: number

  // rare fields, on the prototype until set
  /** Set while the run's fiber is suspended (not for runs that finish synchronously). */
  declare fiber: Fiber.Fiber<unknown, unknown> | undefined
  /** Set once the pool stops the run (a failure, the pool closing): it unwinds without taking a lane back. */
  declare stopped: boolean
  /** Set while the run's current attempt has run out of time: it unwinds likewise, until a retry. */
  declare timedOut: boolean
  /** Fibers of the run waiting to take a lane back; their request is queued in `Lanes`. */
  declare laneWaiters: Array<(granted: boolean) => void> | undefined
  declare nextRequest: Run | undefined
  declare prevRequest: Run | undefined
  /** Fibers waiting for the run to finish. */
  declare waiters: Waiters | undefined
  /** Woken when `subtree` drops back to 1 (for `TaskPool.join` inside a task). */
  declare childWaiters: Waiters | undefined
  /** Set for a run its group's failure dropped from the queue: it never started. */
  declare droppedFromQueue: boolean
  /** Woken when the run starts (for `blockWhenSaturated`). */
  declare onStart: (() => void) | undefined
  /** Links of the group's list of suspended runs, and of the pool's queue. */
  declare prev: Run | undefined
  declare next: Run | undefined
  declare nextQueued: Run | undefined
  /** Worker-local instances the run holds. */
  declare locals: Holder["locals"]
  /** The run's item in its `Task.forEach`, when the caller keeps the results; else -1. */
  declare item: number
  /** The run's span, when a tracer is installed. */
  declare span: Tracer.Span | undefined
  /** `performance.now()` when the run joined the queue. */
  declare queuedAt: number
  /** The attempt running now, from 1. */
  declare attempt: number

  constructor(
    engine: Engine,
    def: TaskDef,
    args: ReadonlyArray<unknown>,
    encoded: unknown,
    context: Context.Context<never>,
    group: RunGroup,
    parent: Run | undefined
  ) {
    this.engine = engine
    this.def = def
    this.args = args
    this.encoded = encoded
    this.context = context
    this.group = group
    this.parent = parent
    this.epoch = undefined
    this.exit = undefined
    this.lane = -1
    this.subtree = 1
    // Set by `Telemetry.submitted`; initialized here so that every run has one shape.
    this.id = 0
    this.sink = undefined!
    this.figures = undefined!
    this.startedAt = 0
  }

  get run(): Run {
    return this
  }

  get task(): string {
    return this.def.name
  }
}

// `HandleKey` on the prototype makes `Task.isHandle` work at no cost per run.
Object.defineProperty(Run.prototype, HandleKey, { value: HandleKey })
for (const rare of ["fiber", "laneWaiters", "nextRequest", "prevRequest", "waiters", "childWaiters", "onStart", "prev", "next", "nextQueued", "locals", "span"]) {
  Object.defineProperty(Run.prototype, rare, { value: undefined, writable: true })
}
for (const flag of ["stopped", "timedOut", "droppedFromQueue"]) Object.defineProperty(Run.prototype, flag, { value: false, writable: true })
Object.defineProperty(Run.prototype, "item", { value: -1, writable: true })
Object.defineProperty(Run.prototype, "queuedAt", { value: 0, writable: true })
Object.defineProperty(Run.prototype, "attempt", { value: 1, writable: true })

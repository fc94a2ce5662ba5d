/**
 * The parallel pool: `maxWorkers` lanes on the calling thread.
 *
 * A submitted task starts at once on a free lane, in a fiber of its own that
 * is evaluated immediately (a task that finishes synchronously never touches
 * the scheduler, as in `Effect.forEach`), or waits in a FIFO queue until a
 * lane frees up. A task that waits on the pool (a handle, a group, `join`, or
 * a blocked submit) gives its lane up while it waits and takes the same lane
 * back afterwards, so fanning out and waiting never deadlocks, even with one
 * lane.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import { PoolTimeoutError } from "../TaskError.ts"
import {
  CurrentPlace,
  type Engine,
  Epoch,
  Group,
  type GroupOutcome,
  Lane,
  removeWaiter,
  Run,
  type Stats,
  type TaskDef,
  wakeAll
} from "./model.ts"

export interface ParallelOptions {
  readonly maxWorkers: number
  readonly timeout: Duration.Duration | undefined
  readonly blockWhenSaturated: boolean
}

/** Builds the pool in the current scope; closing the scope waits for every task. */
export const make = Effect.fnUntraced(function*(options: ParallelOptions) {
  const scope = yield* Effect.scope
  // Worker-local instances live in a scope that closes after the final wait.
  const localsScope = yield* Scope.fork(scope)
  const pool = new ParallelPool(options, localsScope)
  // Finalizers are typed as infallible, but a failure here is how the first
  // task failure reaches `Effect.provide(program, layer)` with its own type.
  yield* Scope.addFinalizerExit(scope, (exit) => pool.close(exit) as Effect.Effect<void>)
  return pool as Engine
})

class ParallelPool implements Engine {
  readonly mode = "parallel"
  readonly maxWorkers: number
  private readonly options: ParallelOptions
  private readonly localsScope: Scope.Scope
  private readonly freeLanes: Array<Lane>
  /** Used by `WorkerLocal` outside of any task. */
  private readonly outsideLane = new Lane(-1)
  private queueHead: Run | undefined = undefined
  private queueTail: Run | undefined = undefined
  private queued = 0
  private draining = false
  private readonly root: Group
  private readonly groups = new Set<Group>()
  private epoch = new Epoch()
  private readonly sealedEpochs: Array<Epoch> = []
  /** Unfinished runs, queued or started. */
  private pending = 0
  /** Woken when `pending` reaches 0 or the pool fails. */
  private readonly idleWaiters: Array<() => void> = []
  private closed = false
  private submitted = 0
  private succeeded = 0
  private failed = 0
  private interrupted = 0
  private running = 0

  constructor(options: ParallelOptions, localsScope: Scope.Scope) {
    this.options = options
    this.localsScope = localsScope
    this.maxWorkers = options.maxWorkers
    this.root = new Group(this, false)
    this.freeLanes = Array.from({ length: options.maxWorkers }, (_, i) => new Lane(options.maxWorkers - 1 - i))
  }

  // ---------------------------------------------------------------------------
  // submit and run

  readonly submit = (fiber: Fiber.Fiber<unknown, unknown>, def: TaskDef, args: ReadonlyArray<unknown>): Effect.Effect<Run> => {
    if (this.root.failure) return Effect.failCause(this.root.failure) as Effect.Effect<never>
    if (this.closed) return Effect.die(new Error(`Task "${def.name}" was submitted after its TaskPool closed`))
    const place = fiber.getRef(CurrentPlace)
    const group: Group = place !== undefined && place.group.owner === this ? place.group : this.root
    if (group.closed) return Effect.die(new Error(`Task "${def.name}" was submitted after its Task.group ended`))
    if (group.failure) return Effect.failCause(group.failure) as Effect.Effect<never>
    const parent = place?.run !== undefined && place.run.engine === this ? place.run : undefined
    const run = new Run(this, def, args, fiber.context, group, parent, parent ? undefined : this.epoch)
    this.submitted++
    this.pending++
    group.pending++
    if (parent) parent.subtree++
    else this.epoch.count++
    if (this.queueHead === undefined && this.freeLanes.length > 0) {
      this.start(run, this.freeLanes.pop()!)
      return Effect.succeed(run)
    }
    this.enqueue(run)
    if (!this.options.blockWhenSaturated) return Effect.succeed(run)
    return Effect.as(
      this.givingUpLane(Effect.callback<void>((resume) => {
        if (run.lane !== undefined || run.exit !== undefined) return resume(Effect.void)
        run.onStart = () => resume(Effect.void)
        return Effect.sync(() => {
          run.onStart = undefined
        })
      })),
      run
    )
  }

  private enqueue(run: Run): void {
    this.queued++
    if (this.queueTail) this.queueTail.nextQueued = run
    else this.queueHead = run
    this.queueTail = run
  }

  private start(run: Run, lane: Lane): void {
    lane.busy = true
    run.lane = lane
    run.holdsLane = true
    this.running++
    if (run.onStart) {
      const onStart = run.onStart
      run.onStart = undefined
      onStart()
    }
    let effect: Effect.Effect<unknown, unknown, unknown>
    try {
      effect = run.def.effect(run.args)
    } catch (defect) {
      effect = Effect.die(defect)
    }
    const fiber = Effect.runForkWith(Context.add(run.context, CurrentPlace, run))(effect as Effect.Effect<unknown, unknown>)
    const exit = fiber.pollUnsafe()
    if (exit) return this.complete(run, exit)
    run.fiber = fiber
    run.group.link(run)
    fiber.addObserver((exit) => this.complete(run, exit))
    // The group may have failed while the run was starting, before it was linked.
    if (run.group.failure) fiber.interruptUnsafe()
  }

  /** Starts queued tasks on free lanes; a loop, so tasks that finish synchronously do not recurse. */
  private drain(): void {
    if (this.draining) return
    this.draining = true
    while (this.freeLanes.length > 0 && this.queueHead !== undefined) {
      const run = this.queueHead
      this.queueHead = run.nextQueued
      if (this.queueHead === undefined) this.queueTail = undefined
      run.nextQueued = undefined
      this.queued--
      this.start(run, this.freeLanes.pop()!)
    }
    this.draining = false
  }

  private complete(run: Run, exit: Exit.Exit<unknown, unknown>): void {
    run.exit = exit
    const group = run.group
    if (run.fiber !== undefined) {
      run.fiber = undefined
      group.unlink(run)
    }
    if (run.lane !== undefined) this.running--
    this.pending--
    group.pending--
    if (exit._tag === "Success") {
      this.succeeded++
      if (group.collectsResults) group.recordSuccess(run.def, exit.value)
    } else if (Cause.hasInterruptsOnly(exit.cause)) {
      this.interrupted++
    } else {
      this.failed++
      this.fail(group, exit.cause)
    }
    if (run.parent === undefined && run.subtree === 1) {
      // The common case of `settle`: a top-level run without live children.
      run.subtree = 0
      if (--run.epoch!.count === 0 && this.sealedEpochs.length > 0) this.drainEpochs()
    } else {
      this.settle(run)
    }
    wakeAll(run.waiters)
    if (group.pending === 0) wakeAll(group.waiters)
    // A run that finished while waiting has already given its lane up.
    if (run.holdsLane) {
      run.holdsLane = false
      this.releaseLane(run.lane!)
    }
    if (this.pending === 0) wakeAll(this.idleWaiters)
  }

  /**
   * A run's subtree settles when it and all its descendants have finished; a
   * settled subtree no longer counts in its parent's. A parent left with only
   * itself wakes a `join` inside it; a settled top-level run counts down its
   * `join` epoch.
   */
  private settle(run: Run): void {
    let current = run
    while (--current.subtree === 0) {
      if (current.parent === undefined) {
        if (--current.epoch!.count === 0) this.drainEpochs()
        return
      }
      current = current.parent
    }
    if (current.subtree === 1) wakeAll(current.childWaiters)
  }

  private drainEpochs(): void {
    while (this.sealedEpochs.length > 0 && this.sealedEpochs[0]!.count === 0) {
      wakeAll(this.sealedEpochs.shift()!.waiters)
    }
  }

  // ---------------------------------------------------------------------------
  // lanes

  private releaseLane(lane: Lane): void {
    if (lane.resumers.length > 0) return lane.resumers.shift()!()
    lane.busy = false
    this.freeLanes.push(lane)
    if (this.queueHead !== undefined) this.drain()
  }

  /**
   * Runs `wait` with the current run's lane given up, then takes the same lane
   * back. Outside a task of this pool, runs `wait` as it is.
   */
  private givingUpLane<A, E, R>(wait: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.withFiber((fiber) => {
      const run = fiber.getRef(CurrentPlace)?.run
      if (run === undefined || run.engine !== this || run.lane === undefined) return wait
      if (run.waits++ === 0) {
        run.holdsLane = false
        this.releaseLane(run.lane)
      }
      // If the fiber is interrupted while waiting, the continuation never runs
      // and the run finishes without a lane, which is what it should do.
      return Effect.flatMap(Effect.exit(wait), (exit) => {
        if (--run.waits > 0) return exit
        return Effect.flatMap(this.takeLane(run), () => exit)
      })
    })
  }

  private takeLane(run: Run): Effect.Effect<void> {
    const lane = run.lane!
    return Effect.callback<void>((resume) => {
      const take = () => {
        run.holdsLane = true
        resume(Effect.void)
      }
      if (!lane.busy) {
        lane.busy = true
        this.freeLanes.splice(this.freeLanes.indexOf(lane), 1)
        return take()
      }
      lane.resumers.push(take)
      return Effect.sync(() => removeWaiter(lane.resumers, take))
    })
  }

  /** Suspends until `ready()` holds, checking again each time one of the waiter lists wakes it. */
  private waitUntil(ready: () => boolean, lists: ReadonlyArray<Array<() => void>>): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (ready()) return resume(Effect.void)
      const wake = () => {
        if (ready()) {
          for (const list of lists) removeWaiter(list, wake)
          return resume(Effect.void)
        }
        // Woken for another reason: wait again.
        for (const list of lists) if (!list.includes(wake)) list.push(wake)
      }
      for (const list of lists) list.push(wake)
      return Effect.sync(() => {
        for (const list of lists) removeWaiter(list, wake)
      })
    })
  }

  // ---------------------------------------------------------------------------
  // failure

  /** The first failure of a group interrupts the group; the root group's fails the whole pool. */
  private fail(group: Group, cause: Cause.Cause<unknown>): void {
    if (group.failure) return
    group.failure = cause
    if (group === this.root) {
      for (const other of this.groups) this.fail(other, cause)
      for (const epoch of this.sealedEpochs) wakeAll(epoch.waiters)
      wakeAll(this.idleWaiters)
    }
    group.body?.interruptUnsafe()
    this.interruptRuns(group)
    wakeAll(group.waiters)
  }

  /** Interrupts a group's suspended runs and drops its queued ones (all groups' when `group` is undefined). */
  private interruptRuns(group: Group | undefined): void {
    const dropped: Array<Run> = []
    let kept: Run | undefined = undefined
    for (let run = this.queueHead; run !== undefined; run = run.nextQueued) {
      if (group === undefined || run.group === group) {
        dropped.push(run)
        this.queued--
      } else {
        if (kept) kept.nextQueued = run
        else this.queueHead = run
        kept = run
      }
    }
    if (kept) kept.nextQueued = undefined
    else this.queueHead = undefined
    this.queueTail = kept
    for (const run of dropped) {
      run.nextQueued = undefined
      this.complete(run, Exit.interrupt())
    }
    const groups = group === undefined ? [this.root, ...this.groups] : [group]
    for (const g of groups) {
      for (const run of g.suspended()) run.fiber?.interruptUnsafe()
    }
  }

  private failureOf(run: Run): Cause.Cause<unknown> {
    const exit = run.exit as Exit.Failure<unknown, unknown>
    if (!Cause.hasInterruptsOnly(exit.cause)) return exit.cause
    // Interrupted because its group or the pool failed: that failure is the answer.
    return run.group.failure ?? this.root.failure ?? exit.cause
  }

  // ---------------------------------------------------------------------------
  // waiting

  readonly await = (run: Run): Effect.Effect<unknown, unknown> => {
    const result = Effect.suspend(() => {
      const exit = run.exit!
      return exit._tag === "Success" ? exit : Effect.failCause(this.failureOf(run))
    })
    if (run.exit) return result
    return Effect.andThen(
      this.givingUpLane(Effect.callback<void>((resume) => {
        if (run.exit) return resume(Effect.void)
        const wake = () => resume(Effect.void)
        ;(run.waiters ??= []).push(wake)
        return Effect.sync(() => removeWaiter(run.waiters, wake))
      })),
      result
    )
  }

  private readonly raiseFailure: Effect.Effect<void> = Effect.suspend(() =>
    this.root.failure ? Effect.failCause(this.root.failure) as Effect.Effect<never> : Effect.void
  )

  readonly join: Effect.Effect<void> = Effect.withFiber((fiber) => {
    const run = fiber.getRef(CurrentPlace)?.run
    const failed = () => this.root.failure !== undefined
    let wait: Effect.Effect<void>
    if (run !== undefined && run.engine === this) {
      // Inside a task, join waits for that task's descendants: it cannot wait for itself.
      wait = this.waitUntil(() => run.subtree === 1 || failed(), [run.childWaiters ??= [], this.idleWaiters])
    } else {
      const epoch = this.epoch
      if (epoch.count > 0) {
        this.sealedEpochs.push(epoch)
        this.epoch = new Epoch()
      }
      const drained = () => epoch.count === 0 && !this.sealedEpochs.includes(epoch)
      wait = this.waitUntil(() => drained() || failed(), [epoch.waiters, this.idleWaiters])
    }
    return Effect.andThen(this.givingUpLane(wait), this.raiseFailure)
  })

  readonly group = <A, E, R>(body: Effect.Effect<A, E, R>): Effect.Effect<GroupOutcome<A>, E, R> =>
    Effect.withFiber((fiber) => {
      if (this.root.failure) return Effect.failCause(this.root.failure) as Effect.Effect<never>
      const group = new Group(this, true)
      this.groups.add(group)
      const enclosing = fiber.getRef(CurrentPlace)?.run
      // The body runs in a fiber of its own so that a failing task can interrupt it.
      const bodyFiber = Effect.runForkWith(
        Context.add(fiber.context as Context.Context<R>, CurrentPlace, { run: enclosing, group })
      )(body)
      group.body = bodyFiber as Fiber.Fiber<unknown, unknown>
      const settled = this.waitUntil(() => group.pending === 0, [group.waiters])
      const stop = Effect.suspend(() => {
        bodyFiber.interruptUnsafe()
        this.interruptRuns(group)
        return Effect.andThen(Fiber.await(bodyFiber), settled)
      })
      const self = this
      return Effect.gen(function*() {
        const bodyExit = yield* Fiber.await(bodyFiber)
        if (bodyExit._tag === "Failure" && !group.failure) {
          // The body failed or was interrupted on its own: its tasks stop and its cause is the group's.
          yield* stop
          return yield* Effect.failCause(bodyExit.cause)
        }
        if (!group.failure) {
          yield* self.givingUpLane(self.waitUntil(() => group.pending === 0 || group.failure !== undefined, [group.waiters]))
        }
        if (group.failure) {
          yield* settled
          return yield* Effect.failCause(group.failure as Cause.Cause<E>)
        }
        return group.outcome((bodyExit as Exit.Success<A>).value)
      }).pipe(
        Effect.onInterrupt(() => stop),
        Effect.ensuring(Effect.sync(() => {
          group.closed = true
          this.groups.delete(group)
        }))
      )
    })

  // ---------------------------------------------------------------------------
  // worker-local instances, stats, close

  readonly local = <A, E, R>(key: object, acquire: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, Scope.Scope>> =>
    Effect.withFiber((fiber) => {
      const run = fiber.getRef(CurrentPlace)?.run
      const lane: Lane = run !== undefined && run.engine === this ? run.lane! : this.outsideLane
      return lane.local(key, acquire, this.localsScope)
    })

  readonly stats = (): Stats => ({
    submitted: this.submitted,
    succeeded: this.succeeded,
    failed: this.failed,
    interrupted: this.interrupted,
    running: this.running,
    queued: this.queued
  })

  private readonly idle = this.waitUntil(() => this.pending === 0, [this.idleWaiters])

  private readonly interruptAndDrain = Effect.suspend(() => {
    this.interruptRuns(undefined)
    return this.idle
  })

  /** The scope's finalizer: wait for every task (bounded by `timeout`), then re-raise the first failure. */
  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void, unknown> {
    if (exit._tag === "Failure") {
      // The program itself failed or was interrupted: stop the tasks and keep its cause.
      this.closed = true
      return this.interruptAndDrain
    }
    const timeout = this.options.timeout
    const doneOrFailed = this.waitUntil(() => this.pending === 0 || this.root.failure !== undefined, [this.idleWaiters])
    const finalWait = timeout === undefined ? doneOrFailed : Effect.timeoutOrElse(doneOrFailed, {
      duration: timeout,
      orElse: () =>
        Effect.sync(() => {
          const error = new PoolTimeoutError({ timeout: Duration.format(timeout), pending: this.pending })
          this.fail(this.root, Cause.fail(error))
        })
    })
    return finalWait.pipe(
      // Interruptible, so that interrupting the program (Ctrl-C) stops the final wait.
      Effect.interruptible,
      Effect.onInterrupt(() => this.interruptAndDrain),
      Effect.andThen(Effect.suspend(() => this.root.failure ? Effect.andThen(this.interruptAndDrain, this.raiseFailure) : Effect.void)),
      Effect.ensuring(Effect.sync(() => {
        this.closed = true
      }))
    )
  }
}

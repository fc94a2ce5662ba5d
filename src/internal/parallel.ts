/**
 * The parallel pool: runs on `maxWorkers` lanes of the calling thread, and
 * portable tasks' attempts on worker threads.
 *
 * A submitted task starts at once on a free lane, in a fiber of its own that
 * is evaluated immediately (a task that finishes synchronously never touches
 * the scheduler, as in `Effect.forEach`), or waits in a FIFO queue until a
 * lane frees up. The rules of lanes are in `lanes.ts`, those of `join` in
 * `joins.ts`, those of worker-local instances in `locals.ts`; this module
 * ties them together with groups and their failures, and the pool's close.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as WorkerThreads from "node:worker_threads"
import { PoolTimeoutError, type TaskPayloadError } from "../TaskError.ts"
import { Answers } from "./answers.ts"
import type { Collect, Engine, GroupOutcome, Handle, Items } from "./engine.ts"
import type { Executor } from "./executor.ts"
import { Feed, noItem } from "./forEach.ts"
import { Group } from "./group.ts"
import { Joins } from "./joins.ts"
import { Lanes } from "./lanes.ts"
import { type Holder, LocalInstances } from "./locals.ts"
import { CurrentPlace, type Place, Run, type RunGroup } from "./run.ts"
import { Counters, type Stats } from "./stats.ts"
import { type AttemptHooks, attempts } from "./attempts.ts"
import { encodeCall, inlineAttempt, type TaskDef } from "./taskDef.ts"
import * as Telemetry from "./telemetry.ts"
import * as Threads from "./threads.ts"
import { waitUntil, type WaitMoments, wakeAll, type Waiters } from "./waiters.ts"
import { Watchers } from "./watchers.ts"

export interface ParallelOptions {
  readonly maxWorkers: number
  readonly threads: number
  readonly timeout: Duration.Duration | undefined
  readonly blockWhenSaturated: boolean
  readonly resourceLimits: WorkerThreads.ResourceLimits | undefined
  readonly crashLimit: number
  readonly warmUp: boolean
}

/**
 * Where a pool's portable tasks run when not on its own worker threads (a
 * cluster's runners): the executor of their attempts, and the form their
 * payloads take, encoded at submit so that a payload it refuses fails there.
 */
export interface Remote<E, R> {
  /** Built in the pool's scope before the pool's final wait is registered, so it is released after that wait. */
  readonly executor: Effect.Effect<Executor, E, R>
  readonly encode: (def: TaskDef, args: ReadonlyArray<unknown>) => Result.Result<unknown, TaskPayloadError>
}

/** Builds the pool in the current scope; closing the scope waits for every task. */
export const make: <E = never, R = never>(
  options: ParallelOptions,
  remote?: Remote<E, R>
) => Effect.Effect<Engine, E, Scope.Scope | R> = Effect.fnUntraced(function*<E, R>(options: ParallelOptions, remote?: Remote<E, R>) {
  const scope = yield* Effect.scope
  // Finalizers run last-added first: the final wait below, then the threads
  // (or the remote executor), then the worker-local instances.
  const localsScope = yield* Scope.fork(scope)
  const pool = new ParallelPool(options, new LocalInstances(localsScope), remote?.encode ?? encodeCall)
  if (remote !== undefined) {
    pool.executor = yield* remote.executor
  } else if (options.threads > 0) {
    pool.executor = yield* Threads.make(options, new Answers(pool))
  }
  // Finalizers are typed as infallible, but a failure here is how the first
  // task failure reaches `Effect.provide(program, layer)` with its own type.
  yield* Scope.addFinalizerExit(scope, (exit) => pool.close(exit) as Effect.Effect<void>)
  return pool as Engine
})

export class ParallelPool implements Engine {
  readonly mode = "parallel"
  readonly maxWorkers: number
  /** Where portable tasks' attempts run; on this thread when unset. */
  executor: Executor | undefined = undefined
  private readonly options: ParallelOptions
  /** Encodes a portable task's payload at submit, in the form its executor sends. */
  private readonly encode: Remote<unknown, unknown>["encode"]
  private readonly lanes: Lanes
  private readonly locals: LocalInstances
  /** Holds the worker-local instances that code outside any task uses. */
  private readonly outside: Holder = { locals: undefined }
  private readonly joins = new Joins()
  private readonly counters = new Counters()
  /** Runs waiting for a lane to start, oldest first. */
  private queueHead: Run | undefined = undefined
  private queueTail: Run | undefined = undefined
  private draining = false
  readonly root: RunGroup
  private readonly groups = new Set<RunGroup>()
  /** Unfinished runs, queued or started. */
  private pending = 0
  /** Woken when `pending` reaches 0 or the pool fails. */
  private readonly idleWaiters: Waiters = []
  /** Set when the scope starts closing for good: later submits are mistakes. */
  private closing = false

  constructor(options: ParallelOptions, locals: LocalInstances, encode: Remote<unknown, unknown>["encode"]) {
    this.options = options
    this.locals = locals
    this.encode = encode
    this.maxWorkers = options.maxWorkers
    this.root = new Group(this, undefined)
    this.lanes = new Lanes(options.maxWorkers, () => this.drain())
  }

  // ---------------------------------------------------------------------------
  // submit, start, complete

  // A loop submits from one fiber, whose context does not change between calls: its last place is kept.
  private lastContext: Context.Context<never> | undefined = undefined
  private lastPlace: Place | undefined = undefined

  readonly submit = (fiber: Fiber.Fiber<unknown, unknown>, def: TaskDef, args: ReadonlyArray<unknown>): Effect.Effect<Run, unknown> => {
    if (fiber.context !== this.lastContext) {
      this.lastPlace = fiber.getRef(CurrentPlace)
      this.lastContext = fiber.context
    }
    const place = this.lastPlace
    const group = this.groupOf(place)
    const encoded = this.encode(def, args)
    if (Result.isFailure(encoded)) return Effect.fail(encoded.failure)
    return this.submitRun(def, args, encoded.success, fiber.context, group, this.ownRun(place?.run))
  }

  /** The group a fiber at `place` submits into: its own if it is one of this pool's, else the root. */
  private groupOf(place: Place | undefined): RunGroup {
    return place !== undefined && place.group.owner === this ? place.group : this.root
  }

  /** `run` if it is one of this pool's runs (an inner pool's tasks see the outer pool's runs). */
  ownRun(run: Run | undefined): Run | undefined {
    return run !== undefined && run.engine === this ? run : undefined
  }

  submitRun(
    def: TaskDef,
    args: ReadonlyArray<unknown>,
    encoded: unknown,
    context: Context.Context<never>,
    group: RunGroup,
    submitter: Run | undefined
  ): Effect.Effect<Run, unknown> {
    const refusal = this.refusal(def, group, submitter)
    if (refusal !== undefined) return refusal
    const run = new Run(this, def, args, encoded, context, group, this.joins.parentFor(submitter))
    Telemetry.submitted(run)
    this.counters.submit(def)
    this.pending++
    group.pending++
    this.joins.count(run, submitter)
    if (this.queueHead === undefined && this.lanes.available) {
      this.lanes.assign(run)
      this.start(run)
      return Effect.succeed(run)
    }
    this.enqueue(run)
    if (!this.options.blockWhenSaturated) return Effect.succeed(run)
    const started = (moments: WaitMoments) =>
      Effect.callback<void>((resume) => {
        if (run.lane >= 0 || run.exit !== undefined) return resume(Effect.void)
        run.onStart = () => {
          moments.ready()
          resume(Effect.void)
        }
        moments.suspended()
        return Effect.sync(() => {
          run.onStart = undefined
        })
      })
    // A run dropped from the queue (its group or the pool failed) never started: raise why.
    const submitted = Effect.suspend(() => run.droppedFromQueue ? Effect.failCause(this.failureOf(run)[0]) : Effect.succeed(run))
    return Effect.andThen(this.lanes.without(submitter, started), submitted)
  }

  /** Why `submitter` may not submit `def` into `group` now, as the effect that says so; undefined if it may. */
  private refusal(def: TaskDef, group: RunGroup, submitter: Run | undefined): Effect.Effect<never, unknown> | undefined {
    if (submitter?.def.submitsRefused !== undefined) return Effect.die(refused(submitter.def, `submit task "${def.name}"`))
    if (this.root.failure) return Effect.failCause(this.root.failure)
    if (this.closing) return Effect.die(submittedAfterClose(def))
    if (group.closed) return Effect.die(new Error(`Task "${def.name}" was submitted after its Task.group ended`))
    if (group.failure) return Effect.failCause(group.failure)
    // A group or task being stopped takes no more tasks: the submitter (say, a finalizer) belongs to
    // what is being stopped.
    if (group.stopping || (submitter !== undefined && (submitter.stopped || submitter.timedOut))) return Effect.interrupt
    return undefined
  }

  private enqueue(run: Run): void {
    this.counters.queue(run.def, 1)
    Telemetry.enqueued(run)
    if (this.queueTail) this.queueTail.nextQueued = run
    else this.queueHead = run
    this.queueTail = run
  }

  /**
   * Starts queued runs on free lanes, then the items of `Task.forEach` feeds;
   * a loop, so runs that finish synchronously do not recurse. A feed whose
   * items finish synchronously could hold the thread for as long as it has
   * items: after `feedBudget` items the loop lets other work run first.
   */
  private drain(): void {
    if (this.draining) return
    this.draining = true
    try {
      this.drainLoop()
    } finally {
      this.draining = false
    }
  }

  private drainLoop(): void {
    let budget = feedBudget
    while (this.lanes.available) {
      const run = this.queueHead
      if (run !== undefined) {
        this.queueHead = run.nextQueued
        if (this.queueHead === undefined) this.queueTail = undefined
        run.nextQueued = undefined
        this.counters.queue(run.def, -1)
        Telemetry.dequeued(run)
        this.lanes.assign(run)
        this.start(run)
        continue
      }
      const feeds = this.feeds
      if (feeds.length === 0) break
      if (budget-- === 0) {
        this.drainSoon()
        break
      }
      this.startNext(this.nextFeed())
    }
  }

  private drainScheduled = false

  private drainSoon(): void {
    if (this.drainScheduled) return
    this.drainScheduled = true
    setImmediate(() => {
      this.drainScheduled = false
      this.drain()
    })
  }

  private start(run: Run): void {
    this.counters.start(run.def)
    Telemetry.started(run)
    const def = run.def
    let effect: Effect.Effect<unknown, unknown, unknown>
    try {
      const executor = def.portable !== undefined ? this.executor : undefined
      const attempt = executor !== undefined ? executor.attempt(run, () => this.lanes.release(run)) : inlineAttempt(def, run.args)
      effect = attempts(run, attempt as Effect.Effect<unknown, unknown>, def.timeout === undefined && def.retry === undefined ? undefined : this.hooks(run))
      if (executor !== undefined) effect = Effect.andThen(executor.ready, effect)
      effect = Telemetry.traced(run, effect)
    } catch (defect) {
      effect = Effect.die(defect)
    }
    const fiber = Effect.runForkWith(Telemetry.annotated(run, Context.add(run.context, CurrentPlace, run)))(effect as Effect.Effect<unknown, unknown>)
    const exit = fiber.pollUnsafe()
    if (exit) return this.complete(run, exit)
    run.fiber = fiber
    run.group.link(run)
    fiber.addObserver((exit) => this.complete(run, exit))
    // A submitter blocked until this run started goes on only now that the run can be stopped: it may
    // go on at once, and fail or close the pool, before this returns.
    if (run.onStart) {
      const onStart = run.onStart
      run.onStart = undefined
      onStart()
    }
    // The group may have failed while the run was starting, before it was linked.
    if (run.group.failure) this.stop([run])
  }

  /** A timed-out attempt unwinds without a lane; a retry takes one back first. */
  private hooks(run: Run): AttemptHooks {
    return {
      onTimeout: (interrupt) => {
        // Marked first, so that the attempt unwinds without a lane; it may even end, and a retry
        // begin, inside `interrupt`. Only what still waits for a lane after that is its own.
        run.timedOut = true
        interrupt()
        if (run.timedOut) this.lanes.unwind(run)
      },
      beforeRetry: Effect.suspend(() => {
        run.timedOut = false
        return this.lanes.acquire(run, false)
      })
    }
  }

  private complete(run: Run, exit: Exit.Exit<unknown, unknown>): void {
    run.exit = exit
    if (run.onStart) {
      // A blocked submit of a run dropped from the queue goes on, and raises why.
      const onStart = run.onStart
      run.onStart = undefined
      onStart()
    }
    const group = run.group
    if (run.fiber !== undefined) {
      run.fiber = undefined
      group.unlink(run)
    }
    this.pending--
    group.pending--
    const failure = this.counters.finished(run.def, exit, !run.droppedFromQueue)
    Telemetry.finished(run, exit, run.droppedFromQueue)
    if (exit._tag === "Success") {
      if (run.item >= 0 && group.ordered !== undefined) group.ordered[run.item] = exit.value
      else group.recordSuccess(run.def, exit.value)
    } else if (failure) this.fail(group, failure, run.def)
    // An item interrupted by its own code has no result: the call fails with that interruption (as `byCalls` does).
    else if (run.item >= 0 && !group.stopping && !run.droppedFromQueue) this.fail(group, exit.cause, run.def)
    this.joins.settle(run)
    wakeAll(run.waiters)
    if (group.pending === 0) wakeAll(group.waiters)
    this.locals.release(run)
    this.lanes.finished(run)
    if (this.pending === 0) wakeAll(this.idleWaiters)
  }

  // ---------------------------------------------------------------------------
  // failure

  /** The first failure of a group stops the group; the root group's stops the whole pool. */
  fail(group: RunGroup, cause: Cause.Cause<unknown>, task: TaskDef | undefined): void {
    if (group.failure) return
    group.failure = cause
    group.failedTask = task
    if (group === this.root) {
      for (const other of this.groups) this.fail(other, cause, task)
      this.joins.wakeAll()
      wakeAll(this.idleWaiters)
    }
    group.interruptBody?.()
    this.interruptRuns(group)
    wakeAll(group.waiters)
  }

  /** Stops a group's runs: drops its queued ones, interrupts its suspended ones (every group's when `group` is undefined). */
  interruptRuns(group: RunGroup | undefined): void {
    const dropped: Array<Run> = []
    let kept: Run | undefined = undefined
    for (let run = this.queueHead; run !== undefined; run = run.nextQueued) {
      if (group === undefined || run.group === group) {
        dropped.push(run)
        this.counters.queue(run.def, -1)
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
      run.droppedFromQueue = true
      this.complete(run, Exit.interrupt())
    }
    const groups = group === undefined ? [this.root, ...this.groups] : [group]
    this.stop(groups.flatMap((g) => g.suspended()))
  }

  /**
   * Interrupts runs; they unwind without taking a lane back. Every one is
   * marked and interrupted before any is let go, as letting one go (or one
   * ending) may run another's code at once.
   */
  private stop(runs: ReadonlyArray<Run>): void {
    for (const run of runs) run.stopped = true
    for (const run of runs) run.fiber?.interruptUnsafe()
    for (const run of runs) this.lanes.unwind(run)
  }

  /** Why a run failed, and the task it is a failure of: its own, or, if it was interrupted, its group's or the pool's. */
  failureOf(run: Run): readonly [Cause.Cause<unknown>, TaskDef | undefined] {
    const exit = run.exit as Exit.Failure<unknown, unknown>
    if (!Cause.hasInterruptsOnly(exit.cause)) return [exit.cause, run.def]
    if (run.group.failure) return [run.group.failure, run.group.failedTask]
    if (this.root.failure) return [this.root.failure, this.root.failedTask]
    return [exit.cause, run.def]
  }

  // ---------------------------------------------------------------------------
  // waiting

  /** Waits for `run`, giving `waiter`'s lane up meanwhile, and returns its exit or the failure that stopped it. */
  awaitRun(run: Run, waiter: Run | undefined): Effect.Effect<unknown, unknown> {
    const result = Effect.suspend(() => {
      const exit = run.exit!
      return exit._tag === "Success" ? exit : Effect.failCause(this.failureOf(run)[0])
    })
    if (run.exit) return result
    const finished = (moments: WaitMoments) => waitUntil(() => run.exit !== undefined, [run.waiters ??= []], moments)
    return Effect.andThen(this.lanes.without(waiter, finished), result)
  }

  readonly await = (handle: Handle<unknown, unknown>): Effect.Effect<unknown, unknown> =>
    Effect.withFiber((fiber) => this.awaitRun(handle as Run, this.ownRun(fiber.getRef(CurrentPlace)?.run)))

  readonly raiseFailure: Effect.Effect<void> = Effect.suspend(() =>
    this.root.failure ? Effect.failCause(this.root.failure) as Effect.Effect<never> : Effect.void
  )

  /** Inside a task, `join` waits for that task's descendants: a task cannot wait for itself. */
  joinChildren(run: Run): Effect.Effect<void> {
    if (run.def.submitsRefused !== undefined) return Effect.die(refused(run.def, "use TaskPool.join"))
    const settled = () => run.subtree <= 1 || this.root.failure !== undefined
    const wait = (moments: WaitMoments) => waitUntil(settled, [run.childWaiters ??= [], this.idleWaiters], moments)
    // Taking the lane back lets other fibers run first: one that outlived a child may have submitted
    // a descendant meanwhile, which this join covers too.
    const join: Effect.Effect<void> = Effect.andThen(
      this.lanes.without(run, wait),
      Effect.suspend(() => settled() ? this.raiseFailure : join)
    )
    return join
  }

  readonly join: Effect.Effect<void> = Effect.withFiber((fiber) => {
    const run = this.ownRun(fiber.getRef(CurrentPlace)?.run)
    if (run !== undefined) return this.joinChildren(run)
    const { drained, waiters } = this.joins.seal()
    return Effect.andThen(
      waitUntil(() => drained() || this.root.failure !== undefined, [waiters, this.idleWaiters]),
      this.raiseFailure
    )
  })

  openGroup(collect: Collect): RunGroup {
    const group: RunGroup = new Group(this, collect)
    this.groups.add(group)
    return group
  }

  closeGroup(group: RunGroup): void {
    group.closed = true
    this.groups.delete(group)
  }

  /**
   * The end of a group's body: wait for its tasks (giving `waiter`'s lane up)
   * and raise the group's failure; or, if the body failed, stop the tasks.
   */
  settleGroup(group: RunGroup, bodyFailed: boolean, waiter: Run | undefined): Effect.Effect<void, unknown> {
    const settled = waitUntil(() => group.pending === 0, [group.waiters])
    if (bodyFailed) {
      return Effect.suspend(() => {
        group.stopping = true
        this.interruptRuns(group)
        return settled
      })
    }
    const settledOrFailed = (moments: WaitMoments) =>
      waitUntil(() => group.pending === 0 || group.failure !== undefined, [group.waiters], moments)
    return Effect.andThen(
      this.lanes.without(waiter, settledOrFailed),
      Effect.suspend(() => group.failure ? Effect.andThen(settled, Effect.failCause(group.failure)) : Effect.void)
    )
  }

  readonly group = <A, E, R>(body: Effect.Effect<A, E, R>, collect: Collect): Effect.Effect<GroupOutcome<A>, E, R> =>
    Effect.withFiber((fiber) => {
      if (this.root.failure) return Effect.failCause(this.root.failure) as Effect.Effect<never>
      const enclosing = fiber.getRef(CurrentPlace)?.run
      const within = this.ownRun(enclosing)
      if (within?.def.submitsRefused !== undefined) return Effect.die(refused(within.def, "open a Task.group"))
      const group = this.openGroup(collect)
      let bodyFiber: Fiber.Fiber<A, E> | undefined = undefined
      // The body runs in a fiber of its own so that a failing task can interrupt it. It starts inside
      // the region that stops the group: its first steps run at once, and may interrupt the caller.
      const begin = Effect.sync(() => {
        const started = Effect.runForkWith(
          Context.add(fiber.context as Context.Context<R>, CurrentPlace, { run: enclosing, group })
        )(body)
        bodyFiber = started
        group.interruptBody = () => started.interruptUnsafe()
        // A task may have failed the group while the body ran its first synchronous steps.
        if (group.failure) started.interruptUnsafe()
        return started
      })
      const stop = Effect.suspend(() => {
        if (bodyFiber === undefined) return this.settleGroup(group, true, undefined)
        bodyFiber.interruptUnsafe()
        return Effect.andThen(Fiber.await(bodyFiber), this.settleGroup(group, true, undefined))
      })
      return Effect.flatMap(begin, Fiber.await).pipe(
        Effect.flatMap((bodyExit) => {
          // A body that failed or was interrupted on its own stops the group's tasks and fails the group.
          const bodyFailed = bodyExit._tag === "Failure" && group.failure === undefined
          return Effect.andThen(
            this.settleGroup(group, bodyFailed, within),
            bodyExit._tag === "Failure" ? Effect.failCause(bodyExit.cause) : Effect.succeed(group.outcome(bodyExit.value))
          )
        }),
        Effect.onInterrupt(() => stop),
        Effect.ensuring(Effect.sync(() => this.closeGroup(group)))
      ) as Effect.Effect<GroupOutcome<A>, E, R>
    })

  // ---------------------------------------------------------------------------
  // Task.forEach

  /** Feeds that may have items to start. */
  private readonly feeds: Array<Feed> = []
  /** Where `nextFeed` last took from. */
  private lastFeed = 0

  /**
   * The feed to take the next item from: the deepest one (a fan-out inside an
   * item finishes before the outer one takes more lanes), and among feeds as
   * deep, each in turn.
   */
  private nextFeed(): Feed {
    const feeds = this.feeds
    if (feeds.length === 1) return feeds[0]!
    let depth = 0
    for (const feed of feeds) if (feed.depth > depth) depth = feed.depth
    for (let step = 1; step <= feeds.length; step++) {
      const index = (this.lastFeed + step) % feeds.length
      if (feeds[index]!.depth === depth) {
        this.lastFeed = index
        return feeds[index]!
      }
    }
    return feeds[0]!
  }

  readonly forEach = (
    fiber: Fiber.Fiber<unknown, unknown>,
    def: TaskDef,
    items: Items,
    keep: boolean
  ): Effect.Effect<Array<unknown> | undefined, unknown> => {
    const place = fiber.getRef(CurrentPlace)
    const submitter = this.ownRun(place?.run)
    const refusal = this.refusal(def, this.groupOf(place), submitter)
    if (refusal !== undefined) return refusal
    const group = this.openGroup(undefined)
    const feed = new Feed(def, fiber.context, group, submitter, items, keep)
    // Started inside the region that stops the feed: items run synchronously here, and may interrupt the caller.
    const begin = Effect.sync(() => {
      if (Stream.isStream(items)) feed.produce(items, Context.add(fiber.context, CurrentPlace, { run: undefined, group }), () => this.activate(feed), (exit) => this.produced(feed, exit))
      else this.activate(feed)
    })
    const settled = waitUntil(() => group.pending === 0, [group.waiters])
    const settledOrFailed = (moments: WaitMoments) =>
      waitUntil(() => group.pending === 0 || group.failure !== undefined, [group.waiters], moments)
    const outcome = Effect.suspend(() => {
      if (group.failure === undefined) return Effect.succeed(group.ordered)
      this.endFeed(feed)
      return Effect.andThen(settled, Effect.failCause(group.failure))
    })
    const stop = Effect.suspend(() => {
      this.endFeed(feed)
      group.stopping = true
      this.interruptRuns(group)
      return settled
    })
    return Effect.andThen(begin, Effect.andThen(this.lanes.without(submitter, settledOrFailed), outcome)).pipe(
      Effect.onInterrupt(() => stop),
      Effect.ensuring(Effect.suspend(() => {
        this.endFeed(feed)
        this.closeGroup(group)
        return feed.producerStopped
      }))
    )
  }

  /** Starts `feed`'s next item on a free lane; a feed with no item ready leaves the list until it has one. */
  private startNext(feed: Feed): void {
    const group = feed.group
    if (this.closing && group.failure === undefined) this.fail(group, Cause.die(submittedAfterClose(feed.def)), feed.def)
    if (group.failure !== undefined || group.stopping) return this.endFeed(feed)
    let item: unknown
    try {
      item = feed.take()
    } catch (defect) {
      // Failed first: ending the feed may settle the group and wake the caller at once.
      this.fail(group, Cause.die(defect), undefined)
      return this.endFeed(feed)
    }
    if (item === noItem) return feed.ended ? this.endFeed(feed) : this.deactivate(feed)
    const args = [item]
    const encoded = this.encode(feed.def, args)
    if (Result.isFailure(encoded)) {
      this.fail(group, Cause.fail(encoded.failure), feed.def)
      return this.endFeed(feed)
    }
    const run = new Run(this, feed.def, args, encoded.success, feed.context, group, this.joins.parentFor(feed.submitter))
    Telemetry.submitted(run)
    run.item = feed.taken - 1
    this.counters.submit(feed.def)
    this.pending++
    group.pending++
    this.joins.count(run, feed.submitter)
    this.lanes.assign(run)
    this.start(run)
    feed.afterTake()
  }

  private activate(feed: Feed): void {
    if (!feed.active && !feed.ended) {
      feed.active = true
      this.feeds.push(feed)
    }
    this.drain()
  }

  private deactivate(feed: Feed): void {
    if (!feed.active) return
    feed.active = false
    const index = this.feeds.lastIndexOf(feed)
    if (index === this.feeds.length - 1) this.feeds.pop()
    else this.feeds.splice(index, 1)
  }

  /** The feed takes no more items; its group settles once they have finished. */
  private endFeed(feed: Feed): void {
    const ended = feed.end()
    if (ended === false) return
    this.deactivate(feed)
    if (ended !== true) this.fail(feed.group, Cause.die(ended.defect), undefined)
    if (feed.group.pending === 0) wakeAll(feed.group.waiters)
  }

  /** A stream's producer has ended: the stream's failure fails the feed's group. */
  private produced(feed: Feed, exit: Exit.Exit<void, unknown>): void {
    // An interruption the feed did not cause is the stream's own: the call ends with it, as under the serial pool.
    if (exit._tag === "Failure" && (!feed.finished || !Cause.hasInterruptsOnly(exit.cause))) this.fail(feed.group, exit.cause, undefined)
    this.endFeed(feed)
  }

  // ---------------------------------------------------------------------------
  // worker-local instances, stats, close

  readonly local = <A, E, R>(key: object, acquire: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, Scope.Scope>> =>
    Effect.withFiber((fiber) => this.locals.get(this.ownRun(fiber.getRef(CurrentPlace)?.run) ?? this.outside, key, acquire))

  readonly stats: Effect.Effect<Stats> = Effect.sync(() => this.counters.stats(this.executor?.threads() ?? 0))

  private readonly watchers = new Watchers()
  readonly closed = this.watchers.closed
  readonly watch = this.watchers.watch

  private readonly markClosed = Effect.suspend(() => {
    this.closing = true
    return this.watchers.close
  })

  private readonly idle = waitUntil(() => this.pending === 0, [this.idleWaiters])

  private readonly interruptAndDrain = Effect.suspend(() => {
    this.interruptRuns(undefined)
    return this.idle
  })

  /** The scope's finalizer: wait for every task (bounded by `timeout`), then re-raise the first failure. */
  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void, unknown> {
    if (exit._tag === "Failure") {
      // The program itself failed or was interrupted: stop the tasks and keep its cause.
      this.closing = true
      return Effect.ensuring(this.interruptAndDrain, this.markClosed)
    }
    const timeout = this.options.timeout
    const doneOrFailed = waitUntil(() => this.pending === 0 || this.root.failure !== undefined, [this.idleWaiters])
    const finalWait = timeout === undefined ? doneOrFailed : Effect.timeoutOrElse(doneOrFailed, {
      duration: timeout,
      orElse: () =>
        Effect.sync(() => {
          const error = new PoolTimeoutError({ timeout: Duration.format(timeout), pending: this.pending })
          this.fail(this.root, Cause.fail(error), undefined)
        })
    })
    return finalWait.pipe(
      // Interruptible, so that interrupting the program (Ctrl-C) stops the final wait.
      Effect.interruptible,
      Effect.onInterrupt(() => this.interruptAndDrain),
      Effect.andThen(Effect.suspend(() => this.root.failure ? Effect.andThen(this.interruptAndDrain, this.raiseFailure) : Effect.void)),
      Effect.ensuring(this.markClosed)
    )
  }
}

/** Items of `Task.forEach` started in one go before other work gets a turn. */
const feedBudget = 2048

const submittedAfterClose = (def: TaskDef): Error => new Error(`Task "${def.name}" was submitted after its TaskPool closed`)

/** The defect of a task that may not use the pool (see `TaskDef.submitsRefused`). */
const refused = (task: TaskDef, what: string): Error => new Error(`Task "${task.name}" cannot ${what}: ${task.submitsRefused}`)

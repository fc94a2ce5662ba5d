/**
 * The parallel pool: `maxWorkers` lanes on the calling thread, and worker
 * threads for portable tasks.
 *
 * A submitted task starts at once on a free lane, in a fiber of its own that
 * is evaluated immediately (a task that finishes synchronously never touches
 * the scheduler, as in `Effect.forEach`), or waits in a FIFO queue until a
 * lane frees up. A portable task's fiber sends it to the lane's worker thread
 * and waits for the result, so lanes bound threads' work too. A task that
 * waits on the pool (a handle, a group, `join`, or a blocked submit) gives its
 * lane up while it waits and takes the same lane back afterwards, so fanning
 * out and waiting never deadlocks, even with one lane.
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
import type * as WorkerThreads from "node:worker_threads"
import { PoolTimeoutError } from "../TaskError.ts"
import {
  Counters,
  CurrentPlace,
  type Engine,
  Epoch,
  Group,
  type GroupOutcome,
  type Handle,
  Lane,
  removeWaiter,
  Run,
  type Stats,
  type TaskDef,
  wakeAll,
  Watchers
} from "./model.ts"
import { encodeCall, libraryCodec, resolve } from "./portable.ts"
import type * as Protocol from "./protocol.ts"
import * as Threads from "./threads.ts"

export interface ParallelOptions {
  readonly maxWorkers: number
  readonly threads: number
  readonly timeout: Duration.Duration | undefined
  readonly blockWhenSaturated: boolean
  readonly resourceLimits: WorkerThreads.ResourceLimits | undefined
}

/** Builds the pool in the current scope; closing the scope waits for every task. */
export const make = Effect.fnUntraced(function*(options: ParallelOptions) {
  const scope = yield* Effect.scope
  // Finalizers run last-added first: the final wait below, then the threads,
  // then the worker-local instances.
  const localsScope = yield* Scope.fork(scope)
  const pool = new ParallelPool(options, localsScope)
  if (options.threads > 0) {
    pool.threads = yield* Threads.make(
      { threads: options.threads, maxWorkers: options.maxWorkers, resourceLimits: options.resourceLimits },
      pool
    )
  }
  // Finalizers are typed as infallible, but a failure here is how the first
  // task failure reaches `Effect.provide(program, layer)` with its own type.
  yield* Scope.addFinalizerExit(scope, (exit) => pool.close(exit) as Effect.Effect<void>)
  return pool as Engine
})

class ParallelPool implements Engine, Threads.ThreadHost {
  readonly mode = "parallel"
  readonly maxWorkers: number
  threads: Threads.ThreadPool | undefined = undefined
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
  /** Set when the scope starts closing for good: later submits are mistakes. */
  private closed_ = false
  private readonly counters = new Counters()

  constructor(options: ParallelOptions, localsScope: Scope.Scope) {
    this.options = options
    this.localsScope = localsScope
    this.maxWorkers = options.maxWorkers
    this.root = new Group(this, false)
    this.freeLanes = Array.from({ length: options.maxWorkers }, (_, i) => new Lane(options.maxWorkers - 1 - i))
  }

  // ---------------------------------------------------------------------------
  // submit and run

  readonly submit = (fiber: Fiber.Fiber<unknown, unknown>, def: TaskDef, args: ReadonlyArray<unknown>): Effect.Effect<Run, unknown> => {
    const place = fiber.getRef(CurrentPlace)
    const group: Group = place !== undefined && place.group.owner === this ? place.group : this.root
    const parent = place?.run !== undefined && place.run.engine === this ? place.run : undefined
    const encoded = encodeCall(def, args)
    if (Result.isFailure(encoded)) return Effect.fail(encoded.failure)
    return this.submitRun(def, args, encoded.success, fiber.context, group, parent)
  }

  private submitRun(
    def: TaskDef,
    args: ReadonlyArray<unknown>,
    encoded: unknown,
    context: Context.Context<never>,
    group: Group,
    parent: Run | undefined
  ): Effect.Effect<Run, unknown> {
    if (this.root.failure) return Effect.failCause(this.root.failure)
    if (this.closed_) return Effect.die(new Error(`Task "${def.name}" was submitted after its TaskPool closed`))
    if (group.closed) return Effect.die(new Error(`Task "${def.name}" was submitted after its Task.group ended`))
    if (group.failure) return Effect.failCause(group.failure)
    const run = new Run(this, def, args, context, group, parent, parent ? undefined : this.epoch)
    run.encoded = encoded
    this.counters.submitted++
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
    const started = Effect.callback<void>((resume) => {
      if (run.lane !== undefined || run.exit !== undefined) return resume(Effect.void)
      run.onStart = () => resume(Effect.void)
      return Effect.sync(() => {
        run.onStart = undefined
      })
    })
    // A run dropped from the queue (its group or the pool failed) never started: raise why.
    const submitted = Effect.suspend(() =>
      run.lane === undefined && run.exit !== undefined ? Effect.failCause(this.failureOf(run)[0]) : Effect.succeed(run)
    )
    return Effect.andThen(this.givingUpLane(parent, started), submitted)
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
    this.counters.running++
    if (run.onStart) {
      const onStart = run.onStart
      run.onStart = undefined
      onStart()
    }
    const def = run.def
    let effect: Effect.Effect<unknown, unknown, unknown>
    try {
      const attempt = def.portable !== undefined && this.threads !== undefined
        ? this.threads.dispatch(run, this.groupId(run.group))
        : def.run(run.args)
      // A retried attempt starts on the run's lane, whatever the last one left behind.
      effect = def.attempts(def.retries ? Effect.andThen(this.takeLane(run), attempt) : attempt)
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
    if (run.onStart) {
      // A blocked submit of a run that is dropped without starting.
      const onStart = run.onStart
      run.onStart = undefined
      onStart()
    }
    const group = run.group
    if (run.fiber !== undefined) {
      run.fiber = undefined
      group.unlink(run)
    }
    if (run.lane !== undefined) this.counters.running--
    this.pending--
    group.pending--
    const failure = this.counters.finished(exit)
    if (exit._tag === "Success" && group.collectsResults) group.recordSuccess(run.def, exit.value)
    if (failure) this.fail(group, failure, run.def)
    if (run.parent === undefined && run.subtree === 1) {
      // The common case of `settle`: a top-level run without live children.
      run.subtree = 0
      if (--run.epoch!.count === 0 && this.sealedEpochs.length > 0) this.drainEpochs()
    } else {
      this.settle(run)
    }
    wakeAll(run.waiters)
    if (group.pending === 0) wakeAll(group.waiters)
    // A run that finished while waiting has already given its lane up, and no longer wants it back.
    if (run.taking !== undefined) {
      removeWaiter(run.lane!.resumers, run.taking)
      run.taking = undefined
    }
    wakeAll(run.laneWaiters)
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
   * Runs `wait` with `run`'s lane given up, then takes the same lane back.
   * Without a run of this pool (code outside tasks, or a fiber that outlived
   * its task), runs `wait` as it is.
   *
   * A lane is given up when a fiber of the run starts waiting while the run
   * holds it, and taken back when a fiber of the run stops waiting while the
   * run does not, even when the wait is interrupted (a timeout around it, a
   * race): the code after it must not run beside the lane's other task. That
   * finalizer waits only on the lane's current holder, which waits on nothing
   * of this run's, so it cannot deadlock.
   */
  private givingUpLane<A, E, R>(run: Run | undefined, wait: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    if (run === undefined || run.engine !== this || run.lane === undefined) return wait
    return Effect.suspend(() => {
      if (run.exit !== undefined) return wait
      if (run.holdsLane) {
        run.holdsLane = false
        this.releaseLane(run.lane!)
      }
      return Effect.ensuring(wait, this.takeLane(run))
    })
  }

  /** Asks for `run`'s lane back: it goes to the run as soon as it is free, before any queued task. */
  private requestLane(run: Run): void {
    if (run.holdsLane || run.exit !== undefined || run.taking !== undefined) return
    const lane = run.lane!
    const take = () => {
      run.taking = undefined
      run.holdsLane = true
      wakeAll(run.laneWaiters)
    }
    if (!lane.busy) {
      lane.busy = true
      this.freeLanes.splice(this.freeLanes.indexOf(lane), 1)
      return take()
    }
    run.taking = take
    lane.resumers.push(take)
  }

  /** Takes `run`'s lane back, waiting while another run holds it; nothing for a run that has finished. */
  private takeLane(run: Run): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      this.requestLane(run)
      if (run.holdsLane || run.exit !== undefined) return resume(Effect.void)
      ;(run.laneWaiters ??= []).push(() => resume(Effect.void))
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
  private fail(group: Group, cause: Cause.Cause<unknown>, task: TaskDef | undefined): void {
    if (group.failure) return
    group.failure = cause
    group.failedTask = task
    if (group === this.root) {
      for (const other of this.groups) this.fail(other, cause, task)
      for (const epoch of this.sealedEpochs) wakeAll(epoch.waiters)
      wakeAll(this.idleWaiters)
    }
    group.interruptBody?.()
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

  /** Why a run failed, and the task it is a failure of: its own, or, if it was interrupted, its group's or the pool's. */
  private failureOf(run: Run): readonly [Cause.Cause<unknown>, TaskDef | undefined] {
    const exit = run.exit as Exit.Failure<unknown, unknown>
    if (!Cause.hasInterruptsOnly(exit.cause)) return [exit.cause, run.def]
    if (run.group.failure) return [run.group.failure, run.group.failedTask]
    if (this.root.failure) return [this.root.failure, this.root.failedTask]
    return [exit.cause, run.def]
  }

  // ---------------------------------------------------------------------------
  // waiting

  /** Waits for `run`, giving `waiter`'s lane up meanwhile, and returns its exit or the failure that stopped it. */
  private awaitRun(run: Run, waiter: Run | undefined): Effect.Effect<unknown, unknown> {
    const result = Effect.suspend(() => {
      const exit = run.exit!
      return exit._tag === "Success" ? exit : Effect.failCause(this.failureOf(run)[0])
    })
    if (run.exit) return result
    const finished = this.waitUntil(() => run.exit !== undefined, [run.waiters ??= []])
    return Effect.andThen(this.givingUpLane(waiter, finished), result)
  }

  readonly await = (handle: Handle<unknown, unknown>): Effect.Effect<unknown, unknown> =>
    Effect.withFiber((fiber) => this.awaitRun(handle as Run, fiber.getRef(CurrentPlace)?.run))

  private readonly raiseFailure: Effect.Effect<void> = Effect.suspend(() =>
    this.root.failure ? Effect.failCause(this.root.failure) as Effect.Effect<never> : Effect.void
  )

  /** Inside a task, `join` waits for that task's descendants: a task cannot wait for itself. */
  private joinChildren(run: Run): Effect.Effect<void> {
    const wait = this.waitUntil(() => run.subtree === 1 || this.root.failure !== undefined, [
      run.childWaiters ??= [],
      this.idleWaiters
    ])
    return Effect.andThen(this.givingUpLane(run, wait), this.raiseFailure)
  }

  readonly join: Effect.Effect<void> = Effect.withFiber((fiber) => {
    const run = fiber.getRef(CurrentPlace)?.run
    if (run !== undefined && run.engine === this) return this.joinChildren(run)
    // Seal the current epoch, unless nothing at all is pending before it.
    const epoch = this.epoch
    if (epoch.count > 0 || this.sealedEpochs.length > 0) {
      this.sealedEpochs.push(epoch)
      this.epoch = new Epoch()
    }
    const drained = () => !this.sealedEpochs.includes(epoch)
    return Effect.andThen(
      this.waitUntil(() => drained() || this.root.failure !== undefined, [epoch.waiters, this.idleWaiters]),
      this.raiseFailure
    )
  })

  private openGroup(): Group {
    const group = new Group(this, true)
    this.groups.add(group)
    return group
  }

  private closeGroup(group: Group): void {
    group.closed = true
    this.groups.delete(group)
    this.groupsById.delete(group.id)
  }

  /**
   * The end of a group's body: wait for its tasks (giving `waiter`'s lane up)
   * and raise the group's failure; or, if the body failed, stop the tasks.
   */
  private settleGroup(group: Group, bodyFailed: boolean, waiter: Run | undefined): Effect.Effect<void, unknown> {
    const settled = this.waitUntil(() => group.pending === 0, [group.waiters])
    if (bodyFailed) {
      return Effect.suspend(() => {
        this.interruptRuns(group)
        return settled
      })
    }
    const settledOrFailed = this.waitUntil(() => group.pending === 0 || group.failure !== undefined, [group.waiters])
    return Effect.andThen(
      this.givingUpLane(waiter, settledOrFailed),
      Effect.suspend(() => group.failure ? Effect.andThen(settled, Effect.failCause(group.failure)) : Effect.void)
    )
  }

  readonly group = <A, E, R>(body: Effect.Effect<A, E, R>): Effect.Effect<GroupOutcome<A>, E, R> =>
    Effect.withFiber((fiber) => {
      if (this.root.failure) return Effect.failCause(this.root.failure) as Effect.Effect<never>
      const group = this.openGroup()
      const enclosing = fiber.getRef(CurrentPlace)?.run
      const waiter = enclosing?.engine === this ? enclosing : undefined
      // The body runs in a fiber of its own so that a failing task can interrupt it.
      const bodyFiber = Effect.runForkWith(
        Context.add(fiber.context as Context.Context<R>, CurrentPlace, { run: enclosing, group })
      )(body)
      group.interruptBody = () => bodyFiber.interruptUnsafe()
      // A task may have failed the group while the body ran its first synchronous steps.
      if (group.failure) bodyFiber.interruptUnsafe()
      const stop = Effect.suspend(() => {
        bodyFiber.interruptUnsafe()
        return Effect.andThen(Fiber.await(bodyFiber), this.settleGroup(group, true, undefined))
      })
      return Fiber.await(bodyFiber).pipe(
        Effect.flatMap((bodyExit) => {
          // A body that failed or was interrupted on its own stops the group's tasks and fails the group.
          const bodyFailed = bodyExit._tag === "Failure" && group.failure === undefined
          return Effect.andThen(
            this.settleGroup(group, bodyFailed, waiter),
            bodyExit._tag === "Failure" ? Effect.failCause(bodyExit.cause) : Effect.succeed(group.outcome(bodyExit.value))
          )
        }),
        Effect.onInterrupt(() => stop),
        Effect.ensuring(Effect.sync(() => this.closeGroup(group)))
      ) as Effect.Effect<GroupOutcome<A>, E, R>
    })

  // ---------------------------------------------------------------------------
  // questions from tasks on worker threads

  private nextId = 0
  private readonly groupsById = new Map<number, Group>()
  /** Runs submitted from worker threads, by the id their handles carry. */
  private readonly remoteRuns = new Map<number, Run>()

  private groupId(group: Group): number {
    if (group === this.root) return 0
    if (group.id === 0) {
      group.id = ++this.nextId
      this.groupsById.set(group.id, group)
    }
    return group.id
  }

  readonly answer = (question: Protocol.Question): Effect.Effect<Protocol.WireReply> => {
    // A failure goes back encoded with the schemas of the task it is a failure of.
    const answered = (reply: Effect.Effect<unknown, unknown>, failedTask: () => TaskDef | undefined) =>
      Effect.matchCause(reply, {
        onSuccess: (value): Protocol.WireReply => [0, value],
        onFailure: (cause): Protocol.WireReply => [1, wireFailure(cause, failedTask())]
      })
    if (question._tag === "stats") return Effect.map(this.stats, (stats): Protocol.WireReply => [0, stats])
    const asking = this.threads!.runOf(question.parent)
    // The asking task has ended meanwhile (interrupted, or its thread died): nothing to answer.
    if (asking === undefined) return answered(Effect.interrupt, () => undefined)
    switch (question._tag) {
      case "submit": {
        const group = question.group === 0 ? asking.group : this.groupsById.get(question.group) ?? asking.group
        const submitted = resolve(question.module, question.name).pipe(
          Effect.flatMap((def) => this.submitRun(def, [], question.payload, asking.context, group, asking)),
          Effect.map((run) => {
            const id = ++this.nextId
            this.remoteRuns.set(id, run)
            this.threads!.onDispatchEnd(question.parent, () => this.remoteRuns.delete(id))
            return id
          })
        )
        // Raised in `submitRun`'s order: the pool's failure first, then the group's.
        return answered(submitted, () => this.root.failure ? this.root.failedTask : group.failedTask)
      }
      case "await": {
        const run = this.remoteRuns.get(question.run)
        if (run === undefined) return answered(Effect.die(new Error("Task.await: this handle's task is gone")), () => undefined)
        const awaited = Effect.map(this.awaitRun(run, asking), (value) => run.def.portable!.encodeExit(Exit.succeed(value)))
        return answered(awaited, () => this.failureOf(run)[1])
      }
      case "join":
        return answered(this.joinChildren(asking), () => this.root.failedTask)
      case "openGroup": {
        const group = this.openGroup()
        const id = this.groupId(group)
        const lane = asking.lane!.index
        group.interruptBody = () => this.threads!.interruptBody(lane, id)
        // A task that ends without closing its group (its thread died) leaves nothing running.
        this.threads!.onDispatchEnd(question.parent, () => {
          if (group.closed) return
          this.interruptRuns(group)
          this.closeGroup(group)
        })
        return Effect.succeed([0, id])
      }
      case "closeGroup": {
        const group = this.groupsById.get(question.group)
        if (group === undefined) return Effect.succeed([0, []])
        const bodyFailed = question.bodyFailed && group.failure === undefined
        const settled = this.settleGroup(group, bodyFailed, asking).pipe(
          Effect.map(() => group.wireResults()),
          // Interrupted (the asking thread died): nothing of the group may go on.
          Effect.onInterrupt(() => Effect.sync(() => this.interruptRuns(group))),
          Effect.ensuring(Effect.sync(() => this.closeGroup(group)))
        )
        return answered(settled, () => group.failedTask)
      }
    }
  }

  // ---------------------------------------------------------------------------
  // worker-local instances, stats, close

  readonly local = <A, E, R>(key: object, acquire: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, Scope.Scope>> =>
    Effect.withFiber((fiber) => {
      const run = fiber.getRef(CurrentPlace)?.run
      const lane: Lane = run !== undefined && run.engine === this ? run.lane! : this.outsideLane
      return lane.local(key, acquire, this.localsScope)
    })

  readonly stats: Effect.Effect<Stats> = Effect.sync(() => this.counters.stats(this.queued, this.threads?.alive() ?? 0))

  private readonly watchers = new Watchers()
  readonly closed = this.watchers.closed
  readonly watch = this.watchers.watch

  private readonly markClosed = Effect.suspend(() => {
    this.closed_ = true
    return this.watchers.close
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
      this.closed_ = true
      return Effect.ensuring(this.interruptAndDrain, this.markClosed)
    }
    const timeout = this.options.timeout
    const doneOrFailed = this.waitUntil(() => this.pending === 0 || this.root.failure !== undefined, [this.idleWaiters])
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

const wireFailure = (cause: Cause.Cause<unknown>, task: TaskDef | undefined): Protocol.WireFailure => {
  const exit = Exit.failCause(cause)
  return task?.portable
    ? [task.portable.module, task.name, task.portable.encodeExit(exit)]
    : ["", "", libraryCodec.encodeExit(exit)]
}

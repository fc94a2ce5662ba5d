/**
 * The pool's `maxWorkers` lanes: a run holds one while its code runs.
 *
 * A run that waits on the pool (a handle, a group, `join`, a blocked submit)
 * gives its lane up for the wait, so fanning out and waiting works even with
 * one lane. When the wait ends, the run takes any free lane back, ahead of
 * the runs queued to start. Two rules keep this free of deadlock:
 *
 * - A run that the pool stops (a failure, the pool closing) or whose attempt
 *   has timed out unwinds without taking a lane back: its finalizers never
 *   wait for a lane, so stopping never waits on the tasks being stopped.
 * - Any other run waits only for lanes held by runs that are running code
 *   (a waiting run holds none), and those give it up when they end or wait;
 *   or by portable runs waiting for room on a worker thread, which comes as
 *   attempts there end, and those need no lane (an attempt on a thread gives
 *   its lane up, bound by the thread's window instead).
 *
 * A wait cut short by the task's own code (a timeout or a race around it)
 * takes a lane back before the task goes on, so `maxWorkers` still bounds the
 * code that runs.
 *
 * Lanes are numbers handed out on first use, so a large `maxWorkers` costs
 * nothing until it is used.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { Run } from "./run.ts"
import { noMoments, type WaitMoments } from "./waiters.ts"

export class Lanes {
  readonly size: number
  /** Lanes `0..used-1` have been handed out at least once. */
  private used = 0
  /** Lanes handed out before and free now. */
  private readonly idle: Array<number> = []
  /** Runs waiting to take a lane back, oldest first. */
  private head: Run | undefined = undefined
  private tail: Run | undefined = undefined
  /** Called when a lane is free and no run waits to take one back: the pool starts a queued run. */
  private readonly onFree: () => void

  constructor(size: number, onFree: () => void) {
    this.size = size
    this.onFree = onFree
  }

  /** Whether a queued run can start now. */
  get available(): boolean {
    return this.head === undefined && (this.idle.length > 0 || this.used < this.size)
  }

  /** Gives `run` a free lane; only when `available`. */
  assign(run: Run): void {
    run.lane = this.idle.length > 0 ? this.idle.pop()! : this.used++
  }

  /** `run` gives its lane up: to the oldest run waiting to take one back, or back to the free lanes. */
  release(run: Run): void {
    const lane = run.lane
    if (lane < 0) return
    run.lane = -1
    const next = this.head
    if (next === undefined) {
      this.idle.push(lane)
      return this.onFree()
    }
    this.dequeue(next)
    next.lane = lane
    const waiters = next.laneWaiters!
    next.laneWaiters = undefined
    for (const wake of waiters) wake(true)
  }

  /**
   * Takes a lane for `run`, waiting while none is free. A run that unwinds
   * takes none: an interruptible caller is interrupted, a finalizer (which
   * cannot be) goes on.
   */
  acquire(run: Run, inFinalizer: boolean): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (run.lane >= 0 || run.exit !== undefined) return resume(Effect.void)
      if (unwinding(run)) return resume(inFinalizer ? Effect.void : Effect.interrupt)
      if (this.available) {
        this.assign(run)
        return resume(Effect.void)
      }
      const waiter = (granted: boolean) => resume(granted || inFinalizer ? Effect.void : Effect.interrupt)
      if (run.laneWaiters === undefined) {
        run.laneWaiters = [waiter]
        this.enqueue(run)
      } else run.laneWaiters.push(waiter)
      return Effect.sync(() => {
        const waiters = run.laneWaiters
        if (waiters === undefined) return
        const index = waiters.indexOf(waiter)
        if (index >= 0) waiters.splice(index, 1)
        if (waiters.length > 0) return
        run.laneWaiters = undefined
        this.dequeue(run)
      })
    })
  }

  /**
   * Runs a wait with `run`'s lane given up, and takes a lane back after it
   * (see above). The wait tells its moments: the lane is given up only once
   * its waiter is registered (what the lane then starts may end the wait at
   * once), and not at all if it never suspends; from the moment it is woken
   * ready, the run is first in line for a lane, so that a lane freed before
   * its fiber goes on does not start a queued run ahead of it.
   */
  without<A, E, R>(run: Run | undefined, wait: (moments: WaitMoments) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    if (run === undefined) return wait(noMoments)
    return Effect.suspend(() => {
      if (run.exit !== undefined) return wait(noMoments)
      let gaveUp = false
      const moments: WaitMoments = {
        suspended: () => {
          gaveUp = true
          this.release(run)
        },
        ready: () => this.reserve(run)
      }
      // However the wait ends, the run takes a lane back before it goes on, and
      // nothing interrupts that but its unwinding: a timeout around the wait
      // must not let the code after it run without a lane.
      return Effect.flatMap(
        Effect.exit(Effect.onExit(wait(moments), () => gaveUp ? this.acquire(run, true) : Effect.void)),
        (exit) =>
          // A run the pool is stopping may see its wait end before its own interruption reaches it
          // (stopping one run can end another's wait): it must not go on without a lane, so it is
          // interrupted here. Finalizers, which cannot be, go on.
          gaveUp && unwinding(run) ? Effect.andThen(interruptSelf, exit) : exit
      )
    })
  }

  /** `run`'s wait has ended: it is first in line for a lane until its fiber takes one (see `without`). */
  private reserve(run: Run): void {
    if (run.lane >= 0 || run.exit !== undefined || unwinding(run) || run.laneWaiters !== undefined) return
    if (this.available) return this.assign(run)
    run.laneWaiters = [reserved]
    this.enqueue(run)
  }

  /** `run` unwinds: whatever of it waits for a lane goes on without one. */
  unwind(run: Run): void {
    const waiters = run.laneWaiters
    if (waiters === undefined) return
    run.laneWaiters = undefined
    this.dequeue(run)
    for (const wake of waiters) wake(false)
  }

  /** `run` has finished: it gives its lane up and wants none. */
  finished(run: Run): void {
    this.unwind(run)
    this.release(run)
  }

  private enqueue(run: Run): void {
    run.prevRequest = this.tail
    if (this.tail) this.tail.nextRequest = run
    else this.head = run
    this.tail = run
  }

  private dequeue(run: Run): void {
    if (run.prevRequest) run.prevRequest.nextRequest = run.nextRequest
    else if (this.head === run) this.head = run.nextRequest
    else return // not queued
    if (run.nextRequest) run.nextRequest.prevRequest = run.prevRequest
    else this.tail = run.prevRequest
    run.prevRequest = run.nextRequest = undefined
  }
}

/** The waiter of a run that is first in line: its fiber takes the lane when it goes on. */
const reserved = () => {}

/** Interrupts the current fiber, as the pool would: at once if it is interruptible, else when it becomes so. */
const interruptSelf = Effect.withFiber((fiber) => {
  fiber.interruptUnsafe(fiber.id)
  return Effect.void
})

/** Whether `run` is being stopped, or its attempt has timed out: it takes no lane back. */
const unwinding = (run: Run): boolean => run.stopped || run.timedOut

/**
 * Waiter lists: the pool's way to wake fibers that wait for a condition on
 * its state (a run finished, a group settled, an epoch drained). A waiter is a
 * plain callback, so that waking one costs no allocation.
 *
 * @internal
 */
import * as Effect from "effect/Effect"

export type Waiters = Array<() => void>

/** Wakes every callback in a waiter list. */
export const wakeAll = (waiters: Waiters | undefined): void => {
  if (waiters === undefined || waiters.length === 0) return
  for (const wake of waiters.splice(0)) wake()
}

/** Removes one callback from a waiter list (when the waiting fiber is interrupted). */
export const removeWaiter = (waiters: Waiters | undefined, waiter: () => void): void => {
  const index = waiters ? waiters.indexOf(waiter) : -1
  if (index >= 0) waiters!.splice(index, 1)
}

/**
 * The two moments of a wait that a run's lane depends on (see `Lanes.without`):
 * the wait has registered its waiter and is about to suspend, and it has been
 * woken ready (its fiber goes on when the runtime gets to it).
 */
export interface WaitMoments {
  readonly suspended: () => void
  readonly ready: () => void
}

/** Moments nobody needs. */
export const noMoments: WaitMoments = { suspended: () => {}, ready: () => {} }

/** Suspends until `ready()` holds, checking again each time one of the lists wakes it. */
export const waitUntil = (ready: () => boolean, lists: ReadonlyArray<Waiters>, moments: WaitMoments = noMoments): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (ready()) return resume(Effect.void)
    const wake = () => {
      if (ready()) {
        for (const list of lists) removeWaiter(list, wake)
        moments.ready()
        return resume(Effect.void)
      }
      // Woken for another reason: wait again on the lists that let it go.
      for (const list of lists) if (!list.includes(wake)) list.push(wake)
    }
    for (const list of lists) list.push(wake)
    moments.suspended()
    return Effect.sync(() => {
      for (const list of lists) removeWaiter(list, wake)
    })
  })

/**
 * The fibers that report on a pool (`TaskPool.onProgress`). They run until the
 * pool has closed; the close waits for them, so that their last report sees
 * the final counters.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"

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

/**
 * The attempts of one run: each bounded by its task's `timeout`, retried by
 * its `retry` schedule, with the pool's hooks around them (a retry takes a
 * lane back; a timed-out attempt unwinds without one).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { TaskTimeoutError, WorkerCrashError } from "../TaskError.ts"
import type { Run } from "./run.ts"
import * as Telemetry from "./telemetry.ts"

/** What a pool does around a run's attempts. */
export interface AttemptHooks {
  /** Runs before every attempt but the first (a run takes a lane back there). */
  readonly beforeRetry: Effect.Effect<void>
  /** Called when an attempt's time is up, to interrupt it (`interrupt`) with what the pool must do around that. */
  readonly onTimeout: (interrupt: () => void) => void
}

/** The attempts of one call (`run`): `attempt` bounded by the task's `timeout`, retried by its `retry`. */
export const attempts = (
  run: Run,
  attempt: Effect.Effect<unknown, unknown>,
  hooks?: AttemptHooks
): Effect.Effect<unknown, unknown> => {
  const { retry, timeout } = run.def
  if (timeout === undefined && retry === undefined) return attempt
  const once = timeout === undefined ? attempt : timed(run, timeout, attempt, hooks)
  if (retry === undefined) return once
  // A task that keeps crashing its thread has had its attempts: the schedule does not retry that.
  const options = { schedule: retry, while: (error: unknown) => !(error instanceof WorkerCrashError) }
  let first = true
  return Effect.retry(
    Effect.suspend(() => {
      if (first) {
        first = false
        return once
      }
      Telemetry.retried(run)
      return hooks === undefined ? once : Effect.andThen(hooks.beforeRetry, once)
    }),
    options
  )
}

/**
 * `attempt`, failing with `TaskTimeoutError` once `timeout` has passed. The
 * attempt runs in a fiber of its own so that, when time is up, it is marked
 * interrupted before the pool is told (and lets whatever of it waits for a
 * lane unwind): none of its code runs past its time.
 */
const timed = (
  run: Run,
  timeout: Duration.Duration,
  attempt: Effect.Effect<unknown, unknown>,
  hooks: AttemptHooks | undefined
): Effect.Effect<unknown, unknown> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Effect.forkChild(restore(attempt), { startImmediately: true }), (fiber) => {
      let expired = false
      const timer = Effect.andThen(
        Effect.sleep(timeout),
        Effect.sync(() => {
          expired = true
          const interrupt = () => fiber.interruptUnsafe()
          if (hooks === undefined) interrupt()
          else hooks.onTimeout(interrupt)
        })
      )
      return Effect.flatMap(Effect.forkChild(timer, { startImmediately: true }), (timerFiber) =>
        restore(Fiber.await(fiber)).pipe(
          Effect.onInterrupt(() => Effect.andThen(Fiber.interrupt(timerFiber), Fiber.interrupt(fiber))),
          // Like `Effect.timeout`, the attempt's finalizers have run when the timeout fails.
          Effect.flatMap((exit) => {
            timerFiber.interruptUnsafe()
            if (!expired || Exit.isSuccess(exit) || !Cause.hasInterruptsOnly(exit.cause)) return exit
            Telemetry.timedOut(run)
            return Effect.fail(new TaskTimeoutError({ task: run.def.name, timeout: Duration.format(timeout) }))
          })
        ))
    })
  )

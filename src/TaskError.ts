/**
 * The errors effect-lateral itself raises. Each is a `Schema.TaggedError`, so
 * `Effect.catchTag` handles it and it crosses a worker thread intact.
 *
 * A task's own errors are never wrapped: a task that fails with `HttpError`
 * makes the pool fail with that same `HttpError`.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A task ran longer than the `timeout` given to `Task.make`. The timeout
 * bounds each attempt, so a `retry` schedule retries it like any failure.
 *
 * **Example** (Falling back when a task times out)
 *
 * A failure fails the pool unless it happens in a `Task.group`: handle it there.
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Task } from "effect-lateral"
 *
 * const fetchPage = Task.make("fetchPage", (url: string) => Effect.succeed(url), { timeout: "5 seconds" })
 *
 * const program = Task.group(Effect.asVoid(fetchPage("https://example.com"))).pipe(
 *   Effect.as("fetched"),
 *   Effect.catchTag("TaskTimeoutError", (error) => Effect.succeed(`gave up: ${error.message}`))
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class TaskTimeoutError extends Schema.TaggedError<TaskTimeoutError>()("TaskTimeoutError", {
  task: Schema.String,
  timeout: Schema.String
}) {
  override get message(): string {
    return `Task "${this.task}" timed out after ${this.timeout}`
  }
}

/**
 * The pool's `timeout` expired while its scope was waiting for the remaining
 * tasks. Every task left was interrupted.
 *
 * **Example** (Bounding the final wait)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { TaskPool } from "effect-lateral"
 *
 * declare const program: Effect.Effect<void>
 *
 * const bounded = program.pipe(
 *   Effect.provide(TaskPool.layer({ timeout: "1 minute" })),
 *   Effect.catchTag("PoolTimeoutError", (error) => Effect.logError(error.message))
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class PoolTimeoutError extends Schema.TaggedError<PoolTimeoutError>()("PoolTimeoutError", {
  timeout: Schema.String,
  pending: Schema.Number
}) {
  override get message(): string {
    return `The task pool timed out after ${this.timeout} with ${this.pending} task(s) unfinished; they were interrupted`
  }
}

/**
 * A portable task's payload does not fit its `payload` schema, so it cannot be
 * sent to a worker thread. Raised at the call, under every pool, so a program
 * that runs serially also runs on threads.
 *
 * @category errors
 * @since 0.1.0
 */
export class TaskPayloadError extends Schema.TaggedError<TaskPayloadError>()("TaskPayloadError", {
  task: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Task "${this.task}" got a payload that cannot be sent to a worker thread: ${this.reason}`
  }
}

/**
 * A portable task crashed the worker thread it ran on (an uncaught exception,
 * `process.exit`, running out of memory) `crashes` times, running alone there,
 * so the crashes were its own; it is not run again, not even by a `retry`
 * schedule. The other tasks a crashed thread held are sent again on their
 * own, so a crash costs them nothing but time.
 *
 * @category errors
 * @since 0.1.0
 */
export class WorkerCrashError extends Schema.TaggedError<WorkerCrashError>()("WorkerCrashError", {
  task: Schema.String,
  thread: Schema.Number,
  reason: Schema.String,
  crashes: Schema.Number
}) {
  override get message(): string {
    return `Task "${this.task}" crashed its worker thread ${this.crashes} time(s) (last: thread ${this.thread} ${this.reason}); it is not run again`
  }
}

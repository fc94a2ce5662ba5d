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
 * The worker thread running a portable task died (an uncaught exception,
 * `process.exit`, or running out of memory). Only the tasks that thread held
 * fail with it; the pool starts a new thread for the next tasks. A `retry`
 * schedule on the task runs it again on the new thread.
 *
 * @category errors
 * @since 0.1.0
 */
export class WorkerCrashError extends Schema.TaggedError<WorkerCrashError>()("WorkerCrashError", {
  task: Schema.String,
  thread: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `Task "${this.task}" was lost: worker thread ${this.thread} ${this.reason}`
  }
}

/**
 * What the pools know of a task declared with `Task.make`, and one attempt of
 * a call on this thread (`attempts.ts` bounds and retries them).
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type * as Schedule from "effect/Schedule"
import type { TaskPayloadError } from "../TaskError.ts"
import type { Portable } from "./portable.ts"

export interface TaskDef {
  readonly name: string
  /** One attempt of one call, in the current thread. */
  readonly run: (args: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown, unknown>
  /** Bounds each attempt. */
  readonly timeout: Duration.Duration | undefined
  /** Retries a failed attempt (timeouts included). */
  readonly retry: Schedule.Schedule<unknown, unknown> | undefined
  /** Set for tasks that can run on a worker thread. */
  readonly portable: Portable | undefined
  /** Set when the task's code may not submit, group or join tasks (an attempt on a cluster runner): why not. */
  readonly submitsRefused?: string | undefined
}

/**
 * One attempt on this thread. A portable task's result is checked against its
 * schema here too, so that a value a worker thread could not send back fails
 * the same way inline and under the serial pool.
 */
export const inlineAttempt = (def: TaskDef, args: ReadonlyArray<unknown>): Effect.Effect<unknown, unknown, unknown> => {
  const portable = def.portable
  if (portable === undefined) return def.run(args)
  return Effect.flatMap(Effect.exit(def.run(args)), (exit) => portable.checkExit(exit))
}

const nothingToEncode = Result.succeed(undefined)

/** The encoded payload of a call, or the error its submit fails with (`undefined` for tasks that are not portable). */
export const encodeCall = (def: TaskDef, args: ReadonlyArray<unknown>): Result.Result<unknown, TaskPayloadError> =>
  def.portable === undefined ? nothingToEncode : def.portable.encodePayload(args[0])

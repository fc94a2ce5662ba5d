/**
 * A consumer's tasks, for `test/package.test.ts`: it copies this directory
 * into projects that install the packed package. An in-process task, and a
 * portable task with a typed error that says where it ran.
 */
import { Effect, Schema } from "effect"
import { Task } from "effect-lateral"
import { isMainThread } from "node:worker_threads"

export class Odd extends Schema.TaggedError<Odd>()("Odd", { n: Schema.Number }) {}

export const double = Task.make("double", (n: number) => Effect.succeed(n * 2))

export const half = Task.make(
  "half",
  (n: number) => n % 2 === 0 ? Effect.succeed({ half: n / 2, onWorker: !isMainThread }) : Effect.fail(new Odd({ n })),
  {
    module: import.meta.url,
    payload: Schema.Number,
    success: Schema.Struct({ half: Schema.Number, onWorker: Schema.Boolean }),
    error: Odd
  }
)

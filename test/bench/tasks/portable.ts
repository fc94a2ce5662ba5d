/** The benchmarks' portable tasks (the functions of `work.ts`); worker threads import this module. */
import { Effect, Schema } from "effect"
import { Task } from "effect-lateral"
import * as work from "./work.ts"

export const addOne = Task.make("addOne", (n: number) => Effect.succeed(work.addOne(n)), {
  module: import.meta.url,
  payload: Schema.Number,
  success: Schema.Number
})

export const byteLength = Task.make("byteLength", (data: Uint8Array) => Effect.succeed(work.byteLength(data)), {
  module: import.meta.url,
  payload: Schema.Uint8Array,
  success: Schema.Number
})

export const compressAndHash = Task.make("compressAndHash", (data: Uint8Array) => Effect.sync(() => work.compressAndHash(data)), {
  module: import.meta.url,
  payload: Schema.Uint8Array,
  success: Schema.Struct({ compressed: Schema.Number, sha256: Schema.String })
})

/** The benchmarks' portable tasks; worker threads import this module. */
import { Effect, Schema } from "effect"
import { Task } from "effect-lateral"

/** The trivial task of the throughput benchmark. */
export const addOne = Task.make("addOne", (n: number) => Effect.succeed(n + 1), {
  module: import.meta.url,
  payload: Schema.Number,
  success: Schema.Number
})

/**
 * A fixed amount of CPU work: `rounds` steps of a small hash. Fixed work, not
 * a fixed time, so that two threads sharing one core could not look parallel.
 */
export const burn = (rounds: number): number => {
  let x = 0x811c9dc5
  for (let i = 0; i < rounds; i++) x = Math.imul(x ^ (i & 0xff), 16777619) >>> 0
  return x
}

/** How many rounds of `burn` take about `millis` ms on this thread. */
export const roundsFor = (millis: number): number => {
  const sample = 5_000_000
  const started = performance.now()
  burn(sample)
  return Math.round(sample * millis / (performance.now() - started))
}

export const spin = Task.make("spin", (rounds: number) => Effect.sync(() => burn(rounds)), {
  module: import.meta.url,
  payload: Schema.Number,
  success: Schema.Number
})

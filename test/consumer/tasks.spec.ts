/**
 * A consumer's vitest suite, for `test/package.test.ts`, which runs it with
 * `LATERAL_ENABLED=false`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Task, TaskPool } from "effect-lateral"
import { double, half } from "./tasks.ts"

describe("effect-lateral, installed", () => {
  it.live("in-process tasks", () =>
    Effect.gen(function*() {
      const group = yield* Task.group(Effect.forEach([1, 2, 3], (n) => double(n)), { results: [double] })
      assert.deepStrictEqual(group.results(double).toSorted((a, b) => a - b), [2, 4, 6])
    }).pipe(Effect.provide(TaskPool.layer())))

  it.live("portable tasks run on a worker thread; their typed error is caught by tag", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* Effect.flatMap(half(8), Task.await), { half: 4, onWorker: true })
      const odd = yield* Task.group(half(3)).pipe(
        Effect.as("no error"),
        Effect.catchTag("Odd", (odd) => Effect.succeed(`Odd ${odd.n}`))
      )
      assert.strictEqual(odd, "Odd 3")
    }).pipe(Effect.provide(TaskPool.layer({ threads: 1 }))))

  it.live("layerConfig with LATERAL_ENABLED=false runs portable tasks inline", () =>
    Effect.gen(function*() {
      assert.strictEqual(process.env.LATERAL_ENABLED, "false")
      assert.deepStrictEqual(yield* Effect.flatMap(half(8), Task.await), { half: 4, onWorker: false })
    }).pipe(Effect.provide(TaskPool.layerConfig())))
})

/**
 * A consumer's program, for `test/package.test.ts`: in-process tasks, portable
 * tasks on worker threads with a typed error caught by tag, and
 * `TaskPool.layerConfig()`, which the test runs with `LATERAL_ENABLED=false`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Task, TaskPool } from "effect-lateral"
import { double, half } from "./tasks.ts"

const halfOf = (n: number) =>
  Effect.flatMap(half(n), Task.await).pipe(
    Effect.map(({ half, onWorker }) => `half of ${n} is ${half}, on a worker thread: ${onWorker}`)
  )

const program = Effect.gen(function*() {
  const group = yield* Task.group(Effect.forEach([1, 2, 3], (n) => double(n)), { results: [double] }).pipe(Effect.provide(TaskPool.layer()))
  yield* Console.log(`in-process: ${group.results(double).toSorted((a, b) => a - b).join(" ")}`)

  yield* Effect.gen(function*() {
    yield* Console.log(`portable: ${yield* halfOf(8)}`)
    const odd = yield* Task.group(half(3)).pipe(
      Effect.as("no error"),
      Effect.catchTag("Odd", (odd) => Effect.succeed(`Odd ${odd.n}, caught by tag`))
    )
    yield* Console.log(`portable: ${odd}`)
  }).pipe(Effect.provide(TaskPool.layer({ threads: 1 })))

  yield* Console.log(`layerConfig: ${yield* halfOf(8).pipe(Effect.provide(TaskPool.layerConfig()))}`)
})

NodeRuntime.runMain(program)

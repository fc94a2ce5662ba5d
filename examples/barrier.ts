/**
 * `TaskPool.join` as a barrier: every download finishes before the first
 * index starts, and the program itself stays a straight line.
 *
 *   npx node examples/barrier.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Task, TaskPool } from "effect-lateral"

const files = ["2024-01.csv", "2024-02.csv", "2024-03.csv", "2024-04.csv"]
const downloaded = new Set<string>()

const download = Task.make("download", (file: string) =>
  Effect.gen(function*() {
    yield* Effect.sleep(`${50 + 25 * files.indexOf(file)} millis`)
    downloaded.add(file)
    yield* Console.log(`downloaded ${file}`)
  }))

const index = Task.make("index", (file: string) =>
  Effect.gen(function*() {
    // The barrier guarantees that every file is here, not just this one.
    yield* Console.log(`indexed ${file} (${downloaded.size}/${files.length} files present)`)
  }))

const program = Effect.gen(function*() {
  for (const file of files) yield* download(file)
  yield* TaskPool.join
  yield* Console.log("--- all downloads done ---")
  for (const file of files) yield* index(file)
}).pipe(Effect.provide(TaskPool.layer()))

NodeRuntime.runMain(program)

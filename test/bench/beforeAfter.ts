/**
 * This checkout against another one, in one process, interleaved: the
 * in-process rows (one million tiny tasks, concurrency 100) of both, beside
 * `Effect.forEach`. For "before and after" figures of a change:
 *
 *   git worktree add ../before <commit> && ln -s "$PWD/node_modules" ../before/node_modules
 *   npx node --expose-gc test/bench/beforeAfter.ts ../before
 *
 * Both import the same `effect`. Rows a checkout does not have (`Task.forEach`
 * before 0.2.0, `TaskMetrics` before observability) are left out for it.
 * Environment: measure.ts's `BENCH_QUICK`, `BENCH_REPETITIONS`, `BENCH_WARMUPS`,
 * and `BENCH_TASKS` (default 1,000,000; quick 20,000).
 */
import { Effect } from "effect"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { compare, fromEnv, table, type Variant } from "./measure.ts"

const other = process.argv[2]
if (other === undefined) throw new Error("usage: node test/bench/beforeAfter.ts <path of the other checkout>")

type Library = typeof import("effect-lateral")
const load = (root: string): Promise<Library> => import(pathToFileURL(resolve(root, "src/index.ts")).href)
const before = await load(other)
const after = await load(resolve(import.meta.dirname, "../.."))

const concurrency = 100
const tasks = fromEnv("BENCH_TASKS", 1_000_000, 20_000)
const items = Array.from({ length: tasks }, (_, i) => i)
const work = (i: number) => Effect.sync(() => i + 1)

/** The rows of one checkout; `timing: false` turns the run timing of its metrics off, where it has them. */
const rows = (label: string, lib: Library): Array<Variant> => {
  const tiny = lib.Task.make("tiny", work)
  const variants: Array<Variant> = []
  const timings = lib.TaskMetrics === undefined ? [true] : [true, false]
  for (const timing of timings) {
    const suffix = timing ? "" : ", `TaskMetrics.TimingEnabled` off"
    const provide = <A, E>(effect: Effect.Effect<A, E, any>) =>
      Effect.runPromise(
        (timing ? effect : Effect.provideService(effect, lib.TaskMetrics.TimingEnabled, false)).pipe(
          Effect.provide(lib.TaskPool.layer({ maxWorkers: concurrency }))
        ) as Effect.Effect<A, E>
      )
    variants.push({
      name: `${label}: \`yield* task(i)\` per item${suffix}`,
      run: () =>
        provide(Effect.gen(function*() {
          for (const i of items) yield* tiny(i)
        }))
    })
    if (lib.Task.forEach !== undefined) {
      variants.push({
        name: `${label}: \`Task.forEach(items, task, { discard: true })\`${suffix}`,
        run: () => provide(lib.Task.forEach(items, tiny, { discard: true }))
      })
    }
  }
  return variants
}

const comparison = await compare([
  {
    name: "`Effect.forEach`, concurrency 100 (anchor)",
    run: () => Effect.runPromise(Effect.forEach(items, work, { concurrency, discard: true }))
  },
  ...rows(`before (${other})`, before),
  ...rows("this checkout", after)
])
console.log(table(`Before and after: ${tasks.toLocaleString("en")} tiny tasks, maxWorkers 100`, comparison, {
  rates: [[tasks, "tasks/s"]]
}))

/**
 * In-process submit overhead: one million tiny tasks at `maxWorkers: 100`,
 * side by side with `Effect.forEach({ concurrency: 100 })`, p-limit(100) and a
 * naive fork-per-task with a semaphore. Then the peak memory of one million
 * submits with and without `blockWhenSaturated`, each in a fresh process.
 *
 *   npx node test/bench/inProcess.ts            (BENCH_TASKS, BENCH_REPETITIONS to change the size)
 */
import { Effect, Fiber, Semaphore } from "effect"
import { Task, TaskPool } from "effect-lateral"
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import pLimit from "p-limit"
import { compare, fromEnv, table } from "./measure.ts"

const tasks = fromEnv("BENCH_TASKS", 1_000_000)
const repetitions = fromEnv("BENCH_REPETITIONS", 5)
const concurrency = 100

const work = (i: number) => Effect.sync(() => i + 1)
const tiny = Task.make("tiny", work)
const items = Array.from({ length: tasks }, (_, i) => i)

const submitAll = Effect.gen(function*() {
  for (let i = 0; i < tasks; i++) yield* tiny(i)
})

/** Peak memory of submitting every task to a pool whose lanes are all busy. */
const memoryProbe = async (blockWhenSaturated: boolean) => {
  // A task that suspends once, so tasks pile up unless the producer is held back.
  const yielding = Task.make("yielding", () => Effect.yieldNow)
  let peakHeap = 0
  const sampler = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 5)
  await Effect.runPromise(
    Effect.gen(function*() {
      for (let i = 0; i < tasks; i++) yield* yielding()
    }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: concurrency, blockWhenSaturated })))
  )
  clearInterval(sampler)
  const peakRss = process.resourceUsage().maxRSS * 1024
  process.stdout.write(JSON.stringify({ peakHeap, peakRss }))
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`

const main = async () => {
  const medians = await compare([
    {
      name: "Effect.forEach, concurrency 100 (anchor)",
      run: () => Effect.runPromise(Effect.forEach(items, work, { concurrency, discard: true }))
    },
    {
      name: "effect-lateral, maxWorkers 100",
      run: () => Effect.runPromise(submitAll.pipe(Effect.provide(TaskPool.layer({ maxWorkers: concurrency }))))
    },
    {
      name: "p-limit(100)",
      run: () => {
        const limit = pLimit(concurrency)
        return Promise.all(items.map((i) => limit(async () => i + 1)))
      }
    },
    {
      name: "fork per task + Semaphore(100)",
      run: () =>
        Effect.runPromise(Effect.gen(function*() {
          const semaphore = yield* Semaphore.make(concurrency)
          const fibers: Array<Fiber.Fiber<number>> = []
          for (let i = 0; i < tasks; i++) fibers.push(yield* Effect.forkChild(semaphore.withPermit(work(i))))
          yield* Fiber.awaitAll(fibers)
        }))
    },
    {
      name: "reference: one yield* and one fiber per call, nothing else",
      run: () =>
        Effect.runPromise(Effect.gen(function*() {
          for (let i = 0; i < tasks; i++) {
            yield* Effect.withFiber((fiber) => Effect.succeed(Effect.runForkWith(fiber.context)(work(i))))
          }
        }))
    }
  ], repetitions)

  const anchor = medians.get("Effect.forEach, concurrency 100 (anchor)")!
  const lateral = medians.get("effect-lateral, maxWorkers 100")!
  console.log(`\n### In-process: ${tasks.toLocaleString("en")} tiny tasks, median of ${repetitions}\n`)
  console.log(table(
    ["variant", "seconds", "vs Effect.forEach", "tasks/s"],
    [...medians].map(([name, seconds]) => [
      name,
      seconds.toFixed(3),
      `${(seconds / anchor).toFixed(2)}x`,
      Math.round(tasks / seconds).toLocaleString("en")
    ])
  ))
  console.log(`\neffect-lateral is ${(medians.get("p-limit(100)")! / lateral).toFixed(1)}x faster than p-limit(100).`)

  const probe = (block: boolean) =>
    JSON.parse(execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--memory", String(block)], { encoding: "utf8" })) as {
      peakHeap: number
      peakRss: number
    }
  const blocked = probe(true)
  const queued = probe(false)
  console.log(`\n### Memory: ${tasks.toLocaleString("en")} submits of a task that suspends once, maxWorkers 100\n`)
  console.log(table(["pool", "peak heap", "peak RSS"], [
    ["blockWhenSaturated: true", mib(blocked.peakHeap), mib(blocked.peakRss)],
    ["blockWhenSaturated: false", mib(queued.peakHeap), mib(queued.peakRss)]
  ]))
}

if (process.argv[2] === "--memory") await memoryProbe(process.argv[3] === "true")
else await main()

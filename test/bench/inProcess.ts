/**
 * In-process overhead: one million tiny tasks (`Effect.sync(() => i + 1)`) at
 * concurrency 100, side by side with `Effect.forEach({ concurrency: 100 })`
 * (the anchor), the floor of any one-`yield*`-per-call API, fork + Semaphore
 * and p-limit. Then the peak memory of one million tasks, each sample in a
 * fresh child process, against that same process's idle memory after a GC.
 *
 *   npx node --expose-gc test/bench/inProcess.ts      (or `npm run bench` for every suite)
 *
 * Environment (besides measure.ts's `BENCH_QUICK`, `BENCH_REPETITIONS`, `BENCH_WARMUPS`):
 *
 * - `BENCH_TASKS`: tasks per sample (default 1,000,000; quick 20,000).
 * - `BENCH_MEMORY_TASKS`: tasks per memory probe (default 1,000,000; quick 20,000).
 * - `BENCH_MEMORY_SAMPLES`: fresh processes per memory probe (default 3; quick 1).
 */
import { Effect, Fiber, Semaphore } from "effect"
import { Task, TaskMetrics, TaskPool } from "effect-lateral"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import pLimit from "p-limit"
import { compare, fromEnv, machine, markdown, median, table, type Variant } from "./measure.ts"

const concurrency = 100
const work = (i: number) => Effect.sync(() => i + 1)
const tiny = Task.make("tiny", work)
/** A task that suspends once, so that tasks pile up unless the producer is held back. */
const yielding = Task.make("yielding", (_: number) => Effect.yieldNow)

const throughput = async () => {
  const tasks = fromEnv("BENCH_TASKS", 1_000_000, 20_000)
  const items = Array.from({ length: tasks }, (_, i) => i)
  const variants: Array<Variant> = [
    {
      name: "`Effect.forEach`, concurrency 100 (anchor)",
      run: () => Effect.runPromise(Effect.forEach(items, work, { concurrency, discard: true }))
    },
    {
      name: "effect-lateral: `yield* task(i)` per item, maxWorkers 100",
      run: () =>
        Effect.runPromise(Effect.gen(function*() {
          for (const i of items) yield* tiny(i)
        }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: concurrency }))))
    },
    {
      name: "effect-lateral: `yield* task(i)` per item, `TaskMetrics.TimingEnabled` off (no run durations)",
      run: () =>
        Effect.runPromise(Effect.gen(function*() {
          for (const i of items) yield* tiny(i)
        }).pipe(Effect.provideService(TaskMetrics.TimingEnabled, false), Effect.provide(TaskPool.layer({ maxWorkers: concurrency }))))
    },
    {
      name: "effect-lateral: `Task.forEach(items, task, { discard: true })`, maxWorkers 100",
      run: () =>
        Effect.runPromise(Task.forEach(items, tiny, { discard: true }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: concurrency }))))
    },
    {
      name: "effect-lateral: `Task.forEach(items, task, { discard: true })`, `TaskMetrics.TimingEnabled` off",
      run: () =>
        Effect.runPromise(Task.forEach(items, tiny, { discard: true }).pipe(
          Effect.provideService(TaskMetrics.TimingEnabled, false),
          Effect.provide(TaskPool.layer({ maxWorkers: concurrency }))
        ))
    },
    {
      name: "effect-lateral: `Task.forEach(items, task)` (results in order), maxWorkers 100",
      run: () => Effect.runPromise(Task.forEach(items, tiny).pipe(Effect.provide(TaskPool.layer({ maxWorkers: concurrency }))))
    },
    {
      name: "reference floor: one `yield*` and one fiber per call, nothing else",
      run: () =>
        Effect.runPromise(Effect.gen(function*() {
          for (const i of items) yield* Effect.withFiber((fiber) => Effect.succeed(Effect.runForkWith(fiber.context)(work(i))))
        }))
    },
    {
      name: "fork per task + `Semaphore(100)`",
      run: () =>
        Effect.runPromise(Effect.gen(function*() {
          const semaphore = yield* Semaphore.make(concurrency)
          const fibers: Array<Fiber.Fiber<number>> = []
          for (const i of items) fibers.push(yield* Effect.forkChild(semaphore.withPermit(work(i))))
          yield* Fiber.awaitAll(fibers)
        }))
    },
    {
      name: "p-limit(100)",
      run: () => {
        const limit = pLimit(concurrency)
        return Promise.all(items.map((i) => limit(async () => i + 1)))
      }
    }
  ]
  const comparison = await compare(variants)
  console.log(table(`In-process: ${tasks.toLocaleString("en")} tiny tasks, concurrency 100`, comparison, {
    rates: [[tasks, "tasks/s"]]
  }))
}

// ---------------------------------------------------------------------------
// memory

/** The workloads of the memory probe; each runs `tasks` tasks to the end. */
const workloads = {
  forEach: (tasks: number) =>
    Task.forEach(range(tasks), yielding, { discard: true }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: concurrency }))),
  perCallBlocking: (tasks: number) =>
    Effect.gen(function*() {
      for (let i = 0; i < tasks; i++) yield* yielding(i)
    }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: concurrency, blockWhenSaturated: true }))),
  perCallQueueing: (tasks: number) =>
    Effect.gen(function*() {
      for (let i = 0; i < tasks; i++) yield* yielding(i)
    }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: concurrency }))),
  effectForEach: (tasks: number) =>
    Effect.forEach(Array.from({ length: tasks }, (_, i) => i), () => Effect.yieldNow, { concurrency, discard: true })
} satisfies Record<string, (tasks: number) => Effect.Effect<void>>
type Workload = keyof typeof workloads

/** 0 to `n` - 1, made as they are taken: a source that is not held in memory. */
function* range(n: number) {
  for (let i = 0; i < n; i++) yield i
}

/** The rows of the memory table: a workload, and the flags of the node process that runs it. */
const memoryRows: ReadonlyArray<{ readonly name: string; readonly workload: Workload; readonly flags?: ReadonlyArray<string> }> = [
  { name: "effect-lateral: `yield* task(i)` per item, blockWhenSaturated", workload: "perCallBlocking" },
  {
    // Most of the peak above idle is V8's young generation growing: capped, it shows how much.
    name: "the same, `node --max-semi-space-size=4`",
    workload: "perCallBlocking",
    flags: ["--max-semi-space-size=4"]
  },
  { name: "effect-lateral: `Task.forEach` over a generator, `discard: true`", workload: "forEach" },
  { name: "reference: `Effect.forEach` over an array, concurrency 100", workload: "effectForEach" },
  { name: "effect-lateral: `yield* task(i)` per item, queueing (no blockWhenSaturated)", workload: "perCallQueueing" }
]

interface MemorySample {
  /** RSS once every module is imported, before and after a full `gc()`. */
  readonly rssAfterImports: number
  readonly idleRss: number
  readonly idleHeapUsed: number
  /** The process's peak RSS (`resourceUsage().maxRSS`), and sampled peaks of the JS heap. */
  readonly peakRss: number
  readonly peakHeapUsed: number
  readonly peakHeapTotal: number
  /** The heap still in use after the workload and a full `gc()`: what the run kept. */
  readonly heapUsedAfterGc: number
}

/** In the child process: idle memory after a GC, then the workload, sampled every 5 ms. */
const memoryProbe = async (workload: Workload, tasks: number) => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error("the memory probe needs --expose-gc")
  const rssAfterImports = process.memoryUsage().rss
  gc()
  const idle = process.memoryUsage()
  let peakHeapUsed = 0
  let peakHeapTotal = 0
  const sampler = setInterval(() => {
    const usage = process.memoryUsage()
    peakHeapUsed = Math.max(peakHeapUsed, usage.heapUsed)
    peakHeapTotal = Math.max(peakHeapTotal, usage.heapTotal)
  }, 5)
  await Effect.runPromise(workloads[workload](tasks))
  clearInterval(sampler)
  const peakRss = process.resourceUsage().maxRSS * 1024
  gc()
  const sample: MemorySample = {
    rssAfterImports,
    idleRss: idle.rss,
    idleHeapUsed: idle.heapUsed,
    peakRss,
    peakHeapUsed,
    peakHeapTotal,
    heapUsedAfterGc: process.memoryUsage().heapUsed
  }
  process.stdout.write(JSON.stringify(sample))
}

const probeInChild = (workload: Workload, flags: ReadonlyArray<string>, tasks: number) =>
  new Promise<MemorySample>((resolve, reject) => {
    execFile(
      process.execPath,
      ["--expose-gc", ...flags, fileURLToPath(import.meta.url), "--memory", workload, String(tasks)],
      { encoding: "utf8", timeout: 300_000 },
      (error, stdout) => error ? reject(error) : resolve(JSON.parse(stdout) as MemorySample)
    )
  })

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1)

const memory = async () => {
  const tasks = fromEnv("BENCH_MEMORY_TASKS", 1_000_000, 20_000)
  const samples = fromEnv("BENCH_MEMORY_SAMPLES", 3, 1)
  const comparison = await compare(
    memoryRows.map(({ flags = [], name, workload }) => ({
      name,
      sample: async () => {
        const sample = await probeInChild(workload, flags, tasks)
        return { ...sample, peakOverIdle: sample.peakRss - sample.idleRss }
      }
    })),
    samples,
    0
  )
  const rows = comparison.rows.map(({ name, samples }) => {
    const at = (metric: keyof MemorySample | "peakOverIdle") => median(samples[metric]!)
    return [
      name,
      mib(at("rssAfterImports")),
      mib(at("idleRss")),
      mib(at("peakRss")),
      mib(at("peakOverIdle")),
      mib(at("idleHeapUsed")),
      mib(at("peakHeapUsed")),
      mib(at("heapUsedAfterGc")),
      mib(at("peakHeapTotal"))
    ]
  })
  console.log([
    `### Memory: ${tasks.toLocaleString("en")} tasks that suspend once, maxWorkers 100, MiB`,
    "",
    `${machine(comparison)}; each figure the median over ${samples} fresh process(es) (\`--expose-gc\`); idle RSS is read after imports and a full \`gc()\`, peak RSS is the process's \`maxRSS\`.`,
    "",
    markdown(
      [
        "workload",
        "RSS after imports",
        "idle RSS after gc()",
        "peak RSS",
        "peak RSS − idle",
        "idle heapUsed",
        "peak heapUsed",
        "heapUsed after the run and gc()",
        "peak heapTotal"
      ],
      rows
    ),
    ""
  ].join("\n"))
}

if (process.argv[2] === "--memory") await memoryProbe(process.argv[3] as Workload, Number(process.argv[4]))
else {
  await throughput()
  await memory()
}

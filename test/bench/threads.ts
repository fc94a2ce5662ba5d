/**
 * Worker threads, side by side in one run (every table interleaved and
 * repeated; pools other than the start-up's are started and warmed first):
 *
 * - start-up: the first result in a fresh process (one child process per
 *   sample), effect-lateral against piscina, tinypool and raw workers;
 * - tiny tasks: throughput on 2 threads, piscina's default (the anchor) and a
 *   few `concurrentTasksPerWorker` values, tinypool, raw `worker_threads`,
 *   effect-lateral at its default `maxWorkers` and at 256;
 * - payloads of 1 KiB, 64 KiB and 1 MiB (`Uint8Array`s, copied): piscina's
 *   best configuration from the tiny tasks (the anchor), raw, effect-lateral;
 * - CPU-bound work of `examples/cpu.ts` (deflate + sha256 of 256 KiB buffers):
 *   serially on this thread (the anchor), then on 2 threads each way.
 *
 *   npx node --expose-gc test/bench/threads.ts      (or `npm run bench` for every suite)
 *
 * Environment (besides measure.ts's `BENCH_QUICK`, `BENCH_REPETITIONS`, `BENCH_WARMUPS`):
 *
 * - `BENCH_STARTUP_SAMPLES`: fresh processes per start-up variant (default 7; quick 1).
 * - `BENCH_PORTABLE_TASKS`: tiny tasks per sample (default 50,000; quick 2,000).
 * - `BENCH_PAYLOAD_MIB`: MiB moved per payload sample, at most `BENCH_PORTABLE_TASKS`
 *   tasks (default 128; quick 4).
 * - `BENCH_CPU_BUFFERS`: 256 KiB buffers per CPU-bound sample (default 128; quick 8).
 */
import { Effect, ManagedRuntime } from "effect"
import { Task, TaskPool } from "effect-lateral"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Piscina } from "piscina"
import { Tinypool } from "tinypool"
import { compare, fromEnv, median, table, type Variant } from "./measure.ts"
import { RawPool } from "./rawPool.ts"
import { addOne, byteLength, compressAndHash } from "./tasks/portable.ts"
import * as work from "./tasks/work.ts"

const threads = 2
const workFile = new URL("./tasks/work.ts", import.meta.url).href
const range = (length: number) => Array.from({ length }, (_, i) => i)

/** An effect-lateral pool that lives across samples, as the other pools do. */
const lateralPool = (options: TaskPool.Options) => ManagedRuntime.make(TaskPool.layer(options))
type LateralPool = ReturnType<typeof lateralPool>

/** Starts a pool's threads (and loads the task module on each) before any timing. */
const warm = async (run: (i: number) => Promise<unknown>) => {
  await Promise.all(range(threads * 64).map(run))
}

// ---------------------------------------------------------------------------
// start-up

const startupVariants: ReadonlyArray<readonly [string, string]> = [
  ["raw `worker_threads`, `await import(\"effect\")` then answer (anchor)", "rawEffect"],
  ["raw `worker_threads`, imports nothing", "rawEmpty"],
  ["effect-lateral, `threads: 1`", "lateral1"],
  ["effect-lateral, `threads: 2`", "lateral2"],
  ["piscina, 1 thread", "piscina"],
  ["tinypool, 1 thread", "tinypool"]
]

const startupSample = (variant: string) =>
  new Promise<Record<string, number>>((resolve, reject) => {
    execFile(
      process.execPath,
      [fileURLToPath(new URL("./startupChild.ts", import.meta.url)), variant],
      { encoding: "utf8", timeout: 60_000 },
      (error, stdout) => error ? reject(error) : resolve(JSON.parse(stdout) as Record<string, number>)
    )
  })

const startup = async () => {
  const samples = fromEnv("BENCH_STARTUP_SAMPLES", 7, 1)
  const comparison = await compare(
    startupVariants.map(([name, variant]) => ({ name, sample: () => startupSample(variant) })),
    samples
  )
  const title = "Start-up: one tiny task in a fresh process"
  console.log(table(`${title}, ms from the pool's (or worker's) creation to the first result`, comparison, {
    metric: "fromCreation",
    unit: "ms"
  }))
  console.log(table(`${title}, ms from the process's start to the first result`, comparison, {
    metric: "sinceProcessStart",
    unit: "ms"
  }))
}

// ---------------------------------------------------------------------------
// tiny tasks and payloads

/** Submits one task per item, then waits for all of them: the pool's per-call path. */
const submitAll = <A, E>(runtime: LateralPool, items: ReadonlyArray<A>, task: Task.Task<[A], number, E>) =>
  runtime.runPromise(Effect.gen(function*() {
    for (const item of items) yield* task(item)
    yield* TaskPool.join
  }))

const piscinaDepths = [4, 16, 64, 256]

const tinyAndPayloads = async () => {
  const tasks = fromEnv("BENCH_PORTABLE_TASKS", 50_000, 2_000)
  const items = range(tasks)
  const piscinaDefault = new Piscina({ filename: workFile, minThreads: threads, maxThreads: threads })
  const piscinaTuned = new Map(piscinaDepths.map((depth) => [
    depth,
    new Piscina({ filename: workFile, minThreads: threads, maxThreads: threads, concurrentTasksPerWorker: depth })
  ]))
  const tinypool = new Tinypool({ filename: workFile, minThreads: threads, maxThreads: threads })
  const raw = new RawPool(threads)
  const lateralDefault = lateralPool({ threads })
  const lateral256 = lateralPool({ threads, maxWorkers: 256 })
  const runLateral = (runtime: LateralPool) => (i: number) => runtime.runPromise(Effect.flatMap(addOne(i), Task.await))
  await Promise.all([
    warm((i) => piscinaDefault.run(i, { name: "addOne" })),
    ...[...piscinaTuned.values()].map((pool) => warm((i) => pool.run(i, { name: "addOne" }))),
    warm((i) => tinypool.run(i, { name: "addOne" })),
    raw.ready.then(() => warm((i) => raw.run("addOne", i))),
    warm(runLateral(lateralDefault)),
    warm(runLateral(lateral256))
  ])

  const tiny = await compare([
    { name: "piscina, default (anchor)", run: () => Promise.all(items.map((i) => piscinaDefault.run(i, { name: "addOne" }))) },
    ...[...piscinaTuned].map(([depth, pool]): Variant => ({
      name: `piscina, concurrentTasksPerWorker ${depth}`,
      run: () => Promise.all(items.map((i) => pool.run(i, { name: "addOne" })))
    })),
    { name: "tinypool", run: () => Promise.all(items.map((i) => tinypool.run(i, { name: "addOne" }))) },
    { name: "raw `worker_threads`", run: () => Promise.all(items.map((i) => raw.run("addOne", i))) },
    { name: `effect-lateral, default maxWorkers (${TaskPool.defaultMaxWorkers})`, run: () => submitAll(lateralDefault, items, addOne) },
    { name: "effect-lateral, maxWorkers 256", run: () => submitAll(lateral256, items, addOne) }
  ])
  console.log(table(`Worker threads: ${tasks.toLocaleString("en")} tiny tasks (\`n + 1\`) on ${threads} threads`, tiny, {
    rates: [[tasks, "tasks/s"]]
  }))
  const best = piscinaDepths.reduce((best, depth) => {
    const seconds = median(tiny.rows.find((row) => row.name.endsWith(`concurrentTasksPerWorker ${depth}`))!.samples.seconds!)
    return seconds < best.seconds ? { depth, seconds } : best
  }, { depth: 0, seconds: Infinity }).depth
  console.log(`piscina's best \`concurrentTasksPerWorker\` here: ${best} (lowest median of ${piscinaDepths.join(", ")}); the payload tables use it.\n`)
  const piscinaBest = piscinaTuned.get(best)!

  const totalBytes = fromEnv("BENCH_PAYLOAD_MIB", 128, 4) * 2 ** 20
  for (const [label, size] of [["1 KiB", 2 ** 10], ["64 KiB", 2 ** 16], ["1 MiB", 2 ** 20]] as const) {
    // One buffer per task: a message that carries one buffer twice copies it once.
    const template = new Uint8Array(size).map((_, i) => i * 31)
    const payloads = Array.from({ length: Math.max(1, Math.min(tasks, Math.round(totalBytes / size))) }, () => template.slice())
    const mebibytes = payloads.length * size / 2 ** 20
    const comparison = await compare([
      {
        name: `piscina, concurrentTasksPerWorker ${best} (anchor)`,
        run: () => Promise.all(payloads.map((data) => piscinaBest.run(data, { name: "byteLength" })))
      },
      { name: "raw `worker_threads`", run: () => Promise.all(payloads.map((data) => raw.run("byteLength", data))) },
      {
        name: `effect-lateral, default maxWorkers (${TaskPool.defaultMaxWorkers})`,
        run: () => submitAll(lateralDefault, payloads, byteLength)
      },
      { name: "effect-lateral, maxWorkers 256", run: () => submitAll(lateral256, payloads, byteLength) }
    ])
    console.log(table(
      `Worker threads: ${payloads.length.toLocaleString("en")} payloads of ${label} (${mebibytes.toFixed(0)} MiB) on ${threads} threads`,
      comparison,
      { rates: [[payloads.length, "tasks/s"], [mebibytes, "MiB/s"]] }
    ))
  }

  await Promise.all([
    piscinaDefault.destroy(),
    ...[...piscinaTuned.values()].map((pool) => pool.destroy()),
    tinypool.destroy(),
    raw.close(),
    lateralDefault.dispose(),
    lateral256.dispose()
  ])
}

// ---------------------------------------------------------------------------
// CPU-bound

const cpuBound = async () => {
  const buffers = range(fromEnv("BENCH_CPU_BUFFERS", 128, 8)).map((i) => work.makeBuffer(i, 2 ** 18))
  /** Every variant must compute the same thing: the total compressed size. */
  const expected = buffers.reduce((total, buffer) => total + work.compressAndHash(buffer).compressed, 0)
  const check = (summaries: ReadonlyArray<unknown>) => {
    const total = (summaries as ReadonlyArray<{ readonly compressed: number }>).reduce((sum, { compressed }) => sum + compressed, 0)
    if (total !== expected) throw new Error(`compressed ${total} bytes in all, not ${expected}`)
  }
  /** The pooled part of `examples/cpu.ts`: a group of one task per buffer, and its results. */
  const compressAll = Effect.map(
    Task.group(Effect.forEach(buffers, (buffer) => compressAndHash(buffer), { discard: true }), { results: [compressAndHash] }),
    (report) => report.results(compressAndHash)
  )
  const raw = new RawPool(threads)
  const piscina = new Piscina({ filename: workFile, minThreads: threads, maxThreads: threads })
  const lateral = lateralPool({ threads })
  const runRaw = () => Promise.all(buffers.map((buffer) => raw.run("compressAndHash", buffer)))
  const runPiscina = () => Promise.all(buffers.map((buffer) => piscina.run(buffer, { name: "compressAndHash" })))
  await raw.ready
  await Promise.all([runRaw(), runPiscina(), lateral.runPromise(compressAll)])

  const comparison = await compare([
    { name: "serial, this thread (anchor)", run: async () => check(buffers.map(work.compressAndHash)) },
    { name: `raw \`worker_threads\`, ${threads} workers`, run: async () => check(await runRaw()) },
    { name: `piscina, default, ${threads} threads`, run: async () => check(await runPiscina()) },
    { name: `effect-lateral, \`threads: ${threads}\`, threads already started`, run: async () => check(await lateral.runPromise(compressAll)) },
    {
      name: `effect-lateral, \`threads: ${threads}\`, including start-up (not close)`,
      sample: () =>
        Effect.runPromise(Effect.gen(function*() {
          const started = performance.now()
          check(yield* compressAll)
          return { seconds: (performance.now() - started) / 1000 }
        }).pipe(Effect.provide(TaskPool.layer({ threads }))))
    }
  ])
  await Promise.all([raw.close(), piscina.destroy(), lateral.dispose()])
  console.log(table(
    `CPU-bound: deflate + sha256 of ${buffers.length} buffers of 256 KiB (the work of \`examples/cpu.ts\`)`,
    comparison,
    { ratio: "speedup" }
  ))
}

await startup()
await tinyAndPayloads()
await cpuBound()

/**
 * Portable tasks on worker threads, side by side in one run:
 *
 * - throughput: 50,000 trivial tasks on 2 threads, against piscina 5 and
 *   tinypool 2 with 2 threads each (every pool started and warmed first);
 * - CPU-bound: 8 tasks of about 250 ms on 2 threads, against the same work
 *   run serially.
 *
 *   npx node test/bench/threads.ts        (BENCH_PORTABLE_TASKS, BENCH_REPETITIONS to change the size)
 */
import { Effect, ManagedRuntime } from "effect"
import { TaskPool } from "effect-lateral"
import { Piscina } from "piscina"
import { Tinypool } from "tinypool"
import { compare, fromEnv, table } from "./measure.ts"
import { addOne, burn, roundsFor, spin } from "./tasks/portable.ts"

const tasks = fromEnv("BENCH_PORTABLE_TASKS", 50_000)
const repetitions = fromEnv("BENCH_REPETITIONS", 5)
const items = Array.from({ length: tasks }, (_, i) => i)
const workerFile = new URL("./tasks/add-one.ts", import.meta.url).href

/** A pool that lives across repetitions, like piscina's. */
const lateral = (options: TaskPool.Options) => ManagedRuntime.make(TaskPool.layer(options))

const runAll = (runtime: ManagedRuntime.ManagedRuntime<TaskPool.TaskPool, never>, submit: Effect.Effect<void, unknown, TaskPool.TaskPool>) =>
  runtime.runPromise(Effect.andThen(submit, TaskPool.join))

const main = async () => {
  const piscina = new Piscina({ filename: workerFile, minThreads: 2, maxThreads: 2 })
  // piscina sends one task at a time to each thread unless told otherwise: a tuned one, for fairness.
  const piscinaTuned = new Piscina({ filename: workerFile, minThreads: 2, maxThreads: 2, concurrentTasksPerWorker: 64 })
  const tinypool = new Tinypool({ filename: workerFile, minThreads: 2, maxThreads: 2 })
  const pool = lateral({ threads: 2, maxWorkers: 256 })
  const defaultPool = lateral({ threads: 2 })
  const submitAll = Effect.gen(function*() {
    for (let i = 0; i < tasks; i++) yield* addOne(i)
  })

  const throughput = await compare([
    { name: "piscina 5, 2 threads (anchor)", run: () => Promise.all(items.map((i) => piscina.run(i))) },
    { name: "piscina 5, 2 threads, concurrentTasksPerWorker 64", run: () => Promise.all(items.map((i) => piscinaTuned.run(i))) },
    { name: "tinypool 2, 2 threads", run: () => Promise.all(items.map((i) => tinypool.run(i))) },
    { name: `effect-lateral, 2 threads, default maxWorkers (${TaskPool.defaultMaxWorkers})`, run: () => runAll(defaultPool, submitAll) },
    { name: "effect-lateral, 2 threads, maxWorkers 256", run: () => runAll(pool, submitAll) }
  ], repetitions)
  await Promise.all([piscina.destroy(), piscinaTuned.destroy(), tinypool.destroy(), pool.dispose(), defaultPool.dispose()])

  const anchor = throughput.get("piscina 5, 2 threads (anchor)")!
  console.log(`\n### Worker threads: ${tasks.toLocaleString("en")} trivial tasks, median of ${repetitions}\n`)
  console.log(table(
    ["pool", "seconds", "tasks/s", "vs piscina"],
    [...throughput].map(([name, seconds]) => [
      name,
      seconds.toFixed(3),
      Math.round(tasks / seconds).toLocaleString("en"),
      `${(anchor / seconds).toFixed(2)}x`
    ])
  ))

  const cpuTasks = 8
  const millis = 250
  burn(roundsFor(200)) // warm the JIT before calibrating
  const rounds = roundsFor(millis)
  const cpuPool = lateral({ threads: 2, maxWorkers: 8 })
  const cpu = await compare([
    { name: "serial, one thread (anchor)", run: async () => items.slice(0, cpuTasks).forEach(() => burn(rounds)) },
    {
      name: "effect-lateral, 2 threads",
      run: () => runAll(cpuPool, Effect.forEach(items.slice(0, cpuTasks), () => spin(rounds), { discard: true }))
    }
  ], Math.min(repetitions, 3))
  await cpuPool.dispose()
  const serial = cpu.get("serial, one thread (anchor)")!
  console.log(`\n### CPU-bound: ${cpuTasks} tasks of ${millis} ms, median of ${Math.min(repetitions, 3)}\n`)
  console.log(table(
    ["run", "seconds", "speedup"],
    [...cpu].map(([name, seconds]) => [name, seconds.toFixed(3), `${(serial / seconds).toFixed(2)}x`])
  ))
}

await main()

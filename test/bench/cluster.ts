/**
 * Portable tasks on a cluster (`TaskPool.layerCluster`), on this machine:
 * runner processes (`effect-lateral runner --threads 1`) on loopback sharing
 * a temporary SQLite file, with the process test's short lock timings.
 *
 * - For 1, 2 and 3 runners: tiny tasks (`n + 1`) and CPU tasks (about 100 ms
 *   of hashing each), volatile and durable, through pools that live across
 *   samples (maxWorkers 256), against the local worker-thread pool on 2
 *   threads (the anchor, in this process).
 * - Failover: 3 runners, durable, CPU and tiny tasks; the first runner seen
 *   inside a CPU task is killed with SIGKILL; the time from the kill to that
 *   task's result (it runs again elsewhere), and to the last result.
 *
 *   npx node --expose-gc test/bench/cluster.ts      (or `npm run bench -- cluster.ts`)
 *
 * Environment (besides measure.ts's `BENCH_QUICK`, `BENCH_REPETITIONS`, `BENCH_WARMUPS`):
 *
 * - `BENCH_CLUSTER_TINY`: tiny tasks per sample (default 2,000; quick 200).
 * - `BENCH_CLUSTER_CPU`: CPU tasks per sample (default 24; quick 4).
 * - `BENCH_CLUSTER_RUNNERS`: the largest cluster (default 3).
 */
import { Effect, Fiber, ManagedRuntime } from "effect"
import { Task, TaskPool } from "effect-lateral"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { fastFailover, freePort, repoRoot, type RunnerProcess, signal, startRunner, stopAll } from "../cluster/runnerProcesses.ts"
import * as Tasks from "../fixtures/cluster/tasks.ts"
import { compare, fromEnv, machine, markdown, table } from "./measure.ts"

const range = (length: number) => Array.from({ length }, (_, i) => i)
const tinyTasks = fromEnv("BENCH_CLUSTER_TINY", 2_000, 200)
const cpuTasks = fromEnv("BENCH_CLUSTER_CPU", 24, 4)
const largest = fromEnv("BENCH_CLUSTER_RUNNERS", 3)

/** Rounds of `Tasks.spin` that take about 100 ms on this machine, now. */
const rounds = (() => {
  const probe = 500_000
  const started = performance.now()
  Tasks.spin(probe)
  return Math.round(probe * 100 / (performance.now() - started))
})()

type Pool = ManagedRuntime.ManagedRuntime<TaskPool.TaskPool, unknown>

const tiny = (pool: Pool) =>
  pool.runPromise(Effect.gen(function*() {
    for (const n of range(tinyTasks)) yield* Tasks.tiny({ id: "bench", n })
    yield* TaskPool.join
  }))

const cpu = (pool: Pool) =>
  pool.runPromise(Effect.gen(function*() {
    for (const n of range(cpuTasks)) yield* Tasks.cpu({ id: `c${n}`, rounds })
    yield* TaskPool.join
  }))

/** `count` runners on a fresh database, registered; `stop` ends them by PID. */
const startCluster = async (count: number, env: Record<string, string> = {}) => {
  const directory = mkdtempSync(join(tmpdir(), "lateral-bench-cluster-"))
  const db = join(directory, "cluster.db")
  const runners: Array<RunnerProcess> = []
  for (let i = 0; i < count; i++) {
    runners.push(startRunner({ port: await Effect.runPromise(freePort), db, modules: ["./test/fixtures/cluster/tasks.ts"], threads: 1, env }))
  }
  const registered = () => {
    if (!existsSync(db)) return 0
    const sql = new DatabaseSync(db, { readOnly: true, timeout: 5_000 })
    try {
      return (sql.prepare("SELECT count(*) AS n FROM lateral_default_runners").get() as { n: number }).n
    } catch {
      return 0
    } finally {
      sql.close()
    }
  }
  const deadline = Date.now() + 60_000
  while (registered() < count) {
    if (Date.now() > deadline) throw new Error(`runners did not start:\n${runners.map((runner) => runner.output()).join("\n")}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return {
    db,
    runners,
    stop: async () => {
      await stopAll(runners)
      rmSync(directory, { recursive: true, force: true })
    }
  }
}

const clusterPool = (db: string, delivery: "durable" | "volatile"): Pool =>
  ManagedRuntime.make(TaskPool.layerCluster({ db, delivery, root: repoRoot, sharding: fastFailover, maxWorkers: 256 }))

const throughput = async () => {
  const local = ManagedRuntime.make(TaskPool.layer({ threads: 2, maxWorkers: 256 }))
  await tiny(local)
  for (let count = 1; count <= largest; count++) {
    const cluster = await startCluster(count)
    const volatile = clusterPool(cluster.db, "volatile")
    const durable = clusterPool(cluster.db, "durable")
    const runners = `${count} runner${count > 1 ? "s" : ""}`
    const tinyTable = await compare([
      { name: "local pool, 2 worker threads (anchor)", run: () => tiny(local) },
      { name: `layerCluster, volatile, ${runners}`, run: () => tiny(volatile) },
      { name: `layerCluster, durable, ${runners}`, run: () => tiny(durable) }
    ])
    console.log(table(`Cluster, ${runners}: ${tinyTasks.toLocaleString("en")} tiny tasks (\`n + 1\`), maxWorkers 256`, tinyTable, {
      rates: [[tinyTasks, "tasks/s"]]
    }))
    const cpuTable = await compare([
      { name: "local pool, 2 worker threads (anchor)", run: () => cpu(local) },
      { name: `layerCluster, volatile, ${runners}`, run: () => cpu(volatile) },
      { name: `layerCluster, durable, ${runners}`, run: () => cpu(durable) }
    ])
    console.log(table(`Cluster, ${runners}: ${cpuTasks} CPU tasks of about 100 ms, one worker thread per runner`, cpuTable, {
      rates: [[cpuTasks, "tasks/s"]]
    }))
    await Promise.all([volatile.dispose(), durable.dispose()])
    await cluster.stop()
  }
  await local.dispose()
}

/** The executions the runners logged: `[task, id, pid]`. */
const executions = (log: string) =>
  existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean).map((line) => line.split(" ") as [string, string, string]) : []

const failover = async () => {
  const log = join(mkdtempSync(join(tmpdir(), "lateral-bench-failover-")), "executions.log")
  const cluster = await startCluster(3, { LATERAL_TEST_EXEC_LOG: log })
  const pool = clusterPool(cluster.db, "durable")
  try {
    await tiny(pool)
    const pids = new Map(cluster.runners.map((runner) => [String(runner.child.pid), runner]))
    const inside = () => {
      const lines = executions(log).filter(([, id]) => id.startsWith("f"))
      const finished = new Set(lines.filter(([task]) => task === "cpu").map(([, id, pid]) => `${id} ${pid}`))
      return lines.find(([task, id, pid]) => task === "cpu-start" && !finished.has(`${id} ${pid}`))
    }
    const answered = new Map<string, number>()
    let killed = { at: 0, id: "", pid: "" }
    await pool.runPromise(Effect.gen(function*() {
      const cpuIds = range(6).map((n) => `f${n}`)
      const handles = yield* Effect.forEach(cpuIds, (id) => Tasks.cpu({ id, rounds: rounds * 3 }))
      for (const n of range(200)) yield* Tasks.tiny({ id: "f-tiny", n })
      const awaited = yield* Effect.forkChild(Effect.forEach(
        handles,
        (handle, n) => Effect.tap(Task.await(handle), () => Effect.sync(() => answered.set(cpuIds[n]!, Date.now()))),
        { concurrency: "unbounded" }
      ))
      yield* Effect.sleep("20 millis").pipe(Effect.repeat({ until: () => inside() !== undefined }), Effect.timeout("60 seconds"))
      const [, id, pid] = inside()!
      signal(pids.get(pid)!, "SIGKILL")
      killed = { at: Date.now(), id, pid }
      yield* Effect.andThen(Fiber.join(awaited), TaskPool.join)
    }))
    const done = Date.now()
    console.log(`### Failover: 3 runners, durable, one SIGKILLed inside a CPU task (about 300 ms)\n`)
    console.log(`${machine()}; lock timings: ${Object.entries(fastFailover).map(([key, value]) => `${key} ${value}`).join(", ")}.\n`)
    console.log(markdown(["from the SIGKILL to", "seconds"], [
      ["the killed task's result (it ran again on another runner)", ((answered.get(killed.id)! - killed.at) / 1000).toFixed(2)],
      ["the last result", ((done - killed.at) / 1000).toFixed(2)]
    ]))
    console.log("")
  } finally {
    await pool.dispose()
    await cluster.stop()
  }
}

console.log(`## Cluster (TaskPool.layerCluster)\n`)
console.log(`CPU task: ${rounds.toLocaleString("en")} rounds of hashing, about 100 ms on this thread when the suite started.\n`)
await throughput()
await failover()

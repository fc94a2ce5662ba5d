/**
 * The process-level smoke test: three `effect-lateral runner` processes on
 * loopback sharing one database, tasks submitted from this process through
 * `TaskPool.layerCluster`, the path a program takes. Durable delivery, and
 * the first runner to start a CPU task killed with SIGKILL inside it: every
 * task must end with the right result, the task the dead runner held having
 * run again on another one. Volatile delivery, and the next runner inside a
 * CPU task stopped with SIGTERM: every task still ends right. Then the last
 * runner, idle, is stopped with SIGTERM and must leave the cluster cleanly.
 *
 * On a temporary SQLite file always; on Postgres too when
 * `LATERAL_TEST_PG_URL` names a database to use.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer } from "effect"
import * as SqlClient from "effect/sql/SqlClient"
import { Task, TaskPool } from "effect-lateral"
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Deploy from "../../src/internal/cluster/deploy.ts"
import { sqlLayer } from "../../src/internal/cluster/storage.ts"
import * as Tasks from "../fixtures/cluster/tasks.ts"
import { fastFailover, freePort, repoRoot, type RunnerProcess, signal, startRunner, stopAll } from "./runnerProcesses.ts"

const TINY = 300
const CPU = 8
/** A few hundred milliseconds of CPU per task, so that the killed runner is inside one. */
const ROUNDS = 4_000_000
const digest = Tasks.spin(ROUNDS)

/** The executions the runners logged: `[task, id, pid]`. */
const executions = (log: string) =>
  existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean).map((line) => line.split(" ") as [string, string, string]) : []

const range = (length: number) => Array.from({ length }, (_, n) => n)

/** The program's pool: `TaskPool.layerCluster` on the deploy's database, with the runners' lock timings. */
const pool = (db: string, deploy: Deploy.Deploy, delivery: "durable" | "volatile", key?: (task: string, payload: unknown) => string) =>
  TaskPool.layerCluster({ db, deploy: deploy.id, delivery, root: repoRoot, sharding: fastFailover, maxWorkers: 64, key })

/**
 * Submits `CPU` CPU and `TINY` tiny tasks with `delivery`; sends `signal`
 * to the first live runner seen inside a CPU task; checks that every task
 * ends with its right result (after a SIGKILL, the task the runner was
 * inside finished elsewhere). Returns the runner it stopped, and figures.
 */
const killOneMidTask = (options: {
  readonly db: string
  readonly deploy: Deploy.Deploy
  readonly delivery: "durable" | "volatile"
  readonly signal: NodeJS.Signals
  readonly runners: ReadonlyArray<RunnerProcess>
  readonly log: string
}) =>
  Effect.gen(function*() {
    const { delivery, log } = options
    const tag = delivery === "durable" ? "d" : "v"
    // The first runner inside a CPU task of this scenario: one it started and has not finished.
    const live = new Map(options.runners.filter((runner) => runner.child.exitCode === null && runner.child.signalCode === null).map((runner) => [String(runner.child.pid), runner]))
    const inside = () => {
      const lines = executions(log).filter(([, id, pid]) => id.startsWith(tag) && live.has(pid))
      const finished = new Set(lines.filter(([task]) => task === "cpu").map(([, id, pid]) => `${id} ${pid}`))
      const found = lines.find(([task, id, pid]) => task === "cpu-start" && !finished.has(`${id} ${pid}`))
      return found && { id: found[1], pid: found[2] }
    }
    const answered = new Map<string, number>()

    const { figures, victim } = yield* Effect.gen(function*() {
      const started = Date.now()
      const cpu = yield* Effect.forEach(range(CPU), (n) => Tasks.cpu({ id: `${tag}c${n}`, rounds: ROUNDS }))
      const tiny = yield* Effect.forEach(range(TINY), (n) => Tasks.tiny({ id: `${tag}t${n}`, n }))
      const cpuResults = yield* Effect.forkChild(Effect.forEach(
        cpu,
        (handle, n) => Effect.tap(Task.await(handle), () => Effect.sync(() => answered.set(`${tag}c${n}`, Date.now()))),
        { concurrency: "unbounded" }
      ))

      yield* Effect.sleep("20 millis").pipe(Effect.repeat({ until: () => inside() !== undefined }), Effect.timeout("60 seconds"))
      const interrupted = inside()!
      const victim = live.get(interrupted.pid)!
      signal(victim, options.signal)
      const killed = Date.now()

      const tinyResults = yield* Effect.forEach(tiny, Task.await).pipe(Effect.timeout("90 seconds"))
      const cpuDigests = yield* Fiber.join(cpuResults).pipe(Effect.timeout("90 seconds"))
      const done = Date.now()
      assert.deepStrictEqual(tinyResults, range(TINY).map((n) => n + 1), `${delivery}: every tiny task's result`)
      assert.deepStrictEqual(cpuDigests, range(CPU).map(() => digest), `${delivery}: every CPU task's result`)
      return {
        victim: { runner: victim, interrupted },
        figures: {
          delivery,
          signal: options.signal,
          secondsToKill: (killed - started) / 1000,
          secondsFromKillToItsTaskResult: (answered.get(interrupted.id)! - killed) / 1000,
          secondsFromKillToLastResult: (done - killed) / 1000
        }
      }
    }).pipe(Effect.provide(pool(options.db, options.deploy, delivery)))

    const runs = new Map<string, Array<string>>()
    for (const [task, id, pid] of executions(log)) {
      if (task !== "cpu-start" && id.startsWith(tag)) runs.set(id, [...(runs.get(id) ?? []), pid])
    }
    assert.strictEqual(runs.size, TINY + CPU, "every task ran")
    if (options.signal === "SIGKILL") {
      const { interrupted } = victim
      assert.isFalse(runs.get(interrupted.id)!.includes(interrupted.pid), `${interrupted.id} never finished on the killed runner`)
    }
    return {
      victim: victim.runner,
      figures: { ...figures, ranMoreThanOnce: [...runs.values()].filter((pids) => pids.length > 1).length }
    }
  })

/** The whole story on the database `db`, for `deploy`. */
const smoke = (db: string, deploy: Deploy.Deploy) =>
  Effect.gen(function*() {
    const log = join(mkdtempSync(join(tmpdir(), "lateral-cluster-")), "executions.log")
    const runners: Array<RunnerProcess> = []
    // Every process this test starts ends by its PID, whatever happens.
    yield* Effect.addFinalizer(() => Effect.promise(() => stopAll(runners, 2_000)))
    for (let i = 0; i < 3; i++) {
      const port = yield* freePort
      runners.push(startRunner({
        port,
        db,
        deploy: deploy.id,
        modules: ["./test/fixtures/cluster/tasks.ts"],
        threads: 1,
        env: { LATERAL_TEST_EXEC_LOG: log }
      }))
    }
    const outputs = () => runners.map((runner) => `--- runner ${runner.address}\n${runner.output()}`).join("\n")
    const sql = Context.get(yield* Layer.build(sqlLayer(db)), SqlClient.SqlClient)
    const registered = Effect.map(
      sql<{ readonly address: string }>`SELECT address FROM ${sql(`${deploy.name}_runners`)}`,
      (rows) => rows.map((row) => row.address).sort()
    ).pipe(Effect.orElseSucceed((): Array<string> => []))

    const figures = yield* Effect.gen(function*() {
      // Ready: every runner has registered.
      const addresses = runners.map((runner) => runner.address).sort()
      yield* Effect.gen(function*() {
        while ((yield* registered).join() !== addresses.join()) yield* Effect.sleep("200 millis")
      }).pipe(Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die(new Error(`runners did not start\n${outputs()}`)) }))

      // Tasks with the same routing key run on the same runner.
      const byKey = (_: string, payload: unknown) => `key-${(payload as { readonly n: number }).n % 3}`
      const keyed = yield* Effect.gen(function*() {
        const handles = yield* Effect.forEach(range(30), (n) => Tasks.tiny({ id: `k${n}`, n }))
        return yield* Effect.forEach(handles, Task.await)
      }).pipe(Effect.provide(pool(db, deploy, "volatile", byKey)))
      assert.deepStrictEqual(keyed, range(30).map((n) => n + 1))
      const pidsByKey = new Map<number, Set<string>>()
      for (const [, id, pid] of executions(log).filter(([, id]) => id.startsWith("k"))) {
        const key = Number(id.slice(1)) % 3
        pidsByKey.set(key, (pidsByKey.get(key) ?? new Set()).add(pid))
      }
      assert.deepStrictEqual([...pidsByKey.values()].map((pids) => pids.size), [1, 1, 1], "one runner per key")

      const durable = yield* killOneMidTask({ db, deploy, delivery: "durable", signal: "SIGKILL", runners, log })
      const volatile = yield* killOneMidTask({ db, deploy, delivery: "volatile", signal: "SIGTERM", runners, log })
      return { durable, volatile }
    }).pipe(Effect.tapCause(() => Effect.sync(() => console.error(outputs()))))
    console.log(JSON.stringify([figures.durable.figures, figures.volatile.figures]))

    // SIGTERM: the last runner leaves the cluster (unregisters, releases its shards) and exits with 0.
    const last = runners.find((runner) => runner !== figures.durable.victim && runner !== figures.volatile.victim)!
    signal(last, "SIGTERM")
    const code = yield* Effect.promise(() => last.exited).pipe(Effect.timeout("20 seconds"))
    assert.strictEqual(code, 0, last.output())
    assert.deepStrictEqual(yield* registered, [], "no runner stays registered")
  })

describe("runner processes", () => {
  it.live("3 runners on one SQLite file: a runner SIGKILLed inside a task (durable), one SIGTERMed (volatile), nothing lost", () =>
    smoke(join(mkdtempSync(join(tmpdir(), "lateral-cluster-")), "cluster.db"), Deploy.make()), 180_000)

  const pg = process.env.LATERAL_TEST_PG_URL
  if (pg !== undefined) {
    it.live("3 runners on Postgres: a runner SIGKILLed inside a task (durable), one SIGTERMed (volatile), nothing lost", () =>
      Effect.gen(function*() {
        const deploy = Deploy.make(`test_${process.pid}`)
        const sql = Context.get(yield* Layer.build(sqlLayer(pg)), SqlClient.SqlClient)
        yield* Effect.addFinalizer(() =>
          Effect.gen(function*() {
            const tables = yield* sql<{ readonly tablename: string }>`SELECT tablename FROM pg_tables WHERE tablename LIKE ${deploy.name + "\\_%"}`
            for (const { tablename } of tables) yield* sql`DROP TABLE ${sql(tablename)}`
          }).pipe(Effect.orDie)
        )
        yield* smoke(pg, deploy)
      }), 180_000)
  }
})

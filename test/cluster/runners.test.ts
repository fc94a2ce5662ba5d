/**
 * The process-level smoke test: three `effect-lateral runner` processes on
 * loopback sharing one database, attempts sent straight through the
 * `TaskRunner` client from this process. Durable attempts, and the first
 * runner to start a CPU task killed with SIGKILL inside it: every attempt
 * must end with the right result, the task the dead runner held having run
 * again on another one. Volatile attempts, and the next runner inside a CPU
 * task stopped with SIGTERM: every attempt still ends right. Then the last
 * runner, idle, is stopped with SIGTERM and must leave the cluster cleanly.
 *
 * On a temporary SQLite file always; on Postgres too when
 * `LATERAL_TEST_PG_URL` names a database to use.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Fiber, Layer, Schema } from "effect"
import * as SqlClient from "effect/sql/SqlClient"
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Client from "../../src/internal/cluster/client.ts"
import * as Deploy from "../../src/internal/cluster/deploy.ts"
import { taskRunner } from "../../src/internal/cluster/entity.ts"
import * as Modules from "../../src/internal/cluster/modules.ts"
import * as Sharding from "../../src/internal/cluster/sharding.ts"
import { sqlLayer } from "../../src/internal/cluster/storage.ts"
import type { PortableTaskDef } from "../../src/internal/registry.ts"
import * as Tasks from "../fixtures/cluster/tasks.ts"
import { fastFailover, freePort, repoRoot, type RunnerProcess, signal, startRunner, stopAll } from "./runnerProcesses.ts"

const modules = Modules.make(repoRoot)
const defOf = (task: object) => (task as Record<symbol, PortableTaskDef>)[Symbol.for("effect-lateral/Task")]!

const TINY = 300
const CPU = 8
/** A few hundred milliseconds of CPU per task, so that the killed runner is inside one. */
const ROUNDS = 4_000_000
const digest = Tasks.spin(ROUNDS)

/** The executions the runners logged: `[task, id, pid]`. */
const executions = (log: string) =>
  existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean).map((line) => line.split(" ") as [string, string, string]) : []

/** One attempt of `task(payload)` through `run`, with a fresh attempt id. */
const attemptWith = (run: (attempt: Client.RemoteAttempt) => Effect.Effect<Exit.Exit<unknown, unknown>>) => <P>(task: object, payload: P) =>
  Effect.suspend(() => {
    const def = defOf(task)
    const encoded = def.portable.json.encodePayload(payload)
    return encoded._tag === "Success"
      ? run({ def, payload: encoded.success as Schema.Json, id: crypto.randomUUID() })
      : Effect.die(encoded.failure)
  })

/**
 * Sends `TINY` tiny and `CPU` CPU attempts with `delivery`; sends `signal`
 * to the first live runner seen inside a CPU task; checks that every attempt
 * ends with its right result (after a SIGKILL, the task the runner was inside
 * finished elsewhere). Returns the runner it stopped, and figures.
 */
const killOneMidTask = (options: {
  readonly deploy: Deploy.Deploy
  readonly delivery: Client.Delivery
  readonly signal: NodeJS.Signals
  readonly runners: ReadonlyArray<RunnerProcess>
  readonly log: string
}) =>
  Effect.gen(function*() {
    const { delivery, log } = options
    const tag = delivery === "durable" ? "d" : "v"
    const attempt = attemptWith(yield* Client.make({ entity: taskRunner(options.deploy), modules, delivery, slots: 64 }))
    const tiny = Effect.forEach(Array.from({ length: TINY }, (_, n) => n), (n) => attempt(Tasks.tiny, { id: `${tag}t${n}`, n }), {
      concurrency: 8
    })
    const answered = new Map<string, number>()
    const cpu = Effect.forEach(
      Array.from({ length: CPU }, (_, n) => `${tag}c${n}`),
      (id) => Effect.tap(attempt(Tasks.cpu, { id, rounds: ROUNDS }), () => Effect.sync(() => answered.set(id, Date.now()))),
      { concurrency: "unbounded" }
    )
    const started = Date.now()
    const all = yield* Effect.forkChild(Effect.all([tiny, cpu], { concurrency: 2 }))

    // The first runner inside a CPU task of this scenario: one it started and has not finished.
    const live = new Map(options.runners.filter((runner) => runner.child.exitCode === null && runner.child.signalCode === null).map((runner) => [String(runner.child.pid), runner]))
    const inside = () => {
      const lines = executions(log).filter(([, id, pid]) => id.startsWith(tag) && live.has(pid))
      const finished = new Set(lines.filter(([task]) => task === "cpu").map(([, id, pid]) => `${id} ${pid}`))
      const found = lines.find(([task, id, pid]) => task === "cpu-start" && !finished.has(`${id} ${pid}`))
      return found && { id: found[1], pid: found[2] }
    }
    yield* Effect.sleep("20 millis").pipe(Effect.repeat({ until: () => inside() !== undefined }), Effect.timeout("60 seconds"))
    const interrupted = inside()!
    const victim = live.get(interrupted.pid)!
    signal(victim, options.signal)
    const killed = Date.now()

    const [tinyExits, cpuExits] = yield* Fiber.join(all).pipe(Effect.timeout("90 seconds"))
    const done = Date.now()
    tinyExits.forEach((exit, n) => assert.deepStrictEqual(exit, Exit.succeed(n + 1), `${delivery} tiny ${n}: ${Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""}`))
    cpuExits.forEach((exit, n) => assert.deepStrictEqual(exit, Exit.succeed(digest), `cpu ${n}`))

    const runs = new Map<string, Array<string>>()
    for (const [task, id, pid] of executions(log)) {
      if (task !== "cpu-start" && id.startsWith(tag)) runs.set(id, [...(runs.get(id) ?? []), pid])
    }
    assert.strictEqual(runs.size, TINY + CPU, "every task ran")
    if (options.signal === "SIGKILL") {
      assert.isFalse(runs.get(interrupted.id)!.includes(interrupted.pid), `${interrupted.id} never finished on the killed runner`)
    }
    return {
      victim,
      figures: {
        delivery,
        signal: options.signal,
        secondsToKill: (killed - started) / 1000,
        secondsFromKillToItsTaskResult: (answered.get(interrupted.id)! - killed) / 1000,
        secondsFromKillToLastResult: (done - killed) / 1000,
        ranMoreThanOnce: [...runs.values()].filter((pids) => pids.length > 1).length
      }
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
      // Ready: every runner has registered, and an attempt to each of the 64 entities has come back.
      const addresses = runners.map((runner) => runner.address).sort()
      yield* Effect.gen(function*() {
        while ((yield* registered).join() !== addresses.join()) yield* Effect.sleep("200 millis")
      }).pipe(Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die(new Error(`runners did not start\n${outputs()}`)) }))
      const attempt = attemptWith(yield* Client.make({ entity: taskRunner(deploy), modules, delivery: "volatile", slots: 64 }))
      yield* Effect.forEach(Array.from({ length: 64 }, (_, n) => n), (n) => attempt(Tasks.tiny, { id: `w${n}`, n }), { concurrency: 64 })

      const durable = yield* killOneMidTask({ deploy, delivery: "durable", signal: "SIGKILL", runners, log })
      const volatile = yield* killOneMidTask({ deploy, delivery: "volatile", signal: "SIGTERM", runners, log })
      return { durable, volatile }
    }).pipe(
      Effect.provide(Sharding.client({ deploy, db, sharding: fastFailover })),
      Effect.tapCause(() => Effect.sync(() => console.error(outputs())))
    )
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

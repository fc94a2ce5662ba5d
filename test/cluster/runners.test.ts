/**
 * The process-level smoke test: three `effect-lateral runner` processes on
 * loopback sharing one SQLite file, attempts sent straight through the
 * `TaskRunner` client from this process, and a runner killed with SIGKILL
 * while it runs a task. Every attempt must end with the right result; the
 * task the dead runner held runs again on another one.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Schema } from "effect"
import { EntityId } from "effect/cluster"
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Client from "../../src/internal/cluster/client.ts"
import * as Deploy from "../../src/internal/cluster/deploy.ts"
import { taskRunner } from "../../src/internal/cluster/entity.ts"
import * as Modules from "../../src/internal/cluster/modules.ts"
import * as Sharding from "../../src/internal/cluster/sharding.ts"
import type { PortableTaskDef } from "../../src/internal/registry.ts"
import * as Tasks from "../fixtures/cluster/tasks.ts"
import {
  fastFailover,
  freePort,
  repoRoot,
  type RunnerProcess,
  shardLocks,
  signal,
  startRunner,
  stopAll,
  waitForShards
} from "./runnerProcesses.ts"

const deploy = Deploy.make()
const entity = taskRunner(deploy)
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

/**
 * Sends `TINY` tiny and `CPU` CPU attempts with `delivery`, half of the CPU
 * ones routed to `victim`'s shards; SIGKILLs `victim` as soon as it is inside
 * a CPU task; checks that every attempt ends with its right result.
 */
const scenario = (options: {
  readonly delivery: Client.Delivery
  readonly victim: RunnerProcess
  readonly db: string
  readonly log: string
}) =>
  Effect.gen(function*() {
    const { delivery, log, victim } = options
    const tag = delivery === "durable" ? "d" : "v"
    const run = yield* Client.make({ entity, modules, delivery, slots: 64 })
    const attempt = <P>(task: object, payload: P, key?: string) =>
      Effect.suspend(() => {
        const def = defOf(task)
        const encoded = def.portable.json.encodePayload(payload)
        return encoded._tag === "Success"
          ? run({ def, payload: encoded.success as Schema.Json, id: `${tag}-${crypto.randomUUID()}`, key })
          : Effect.die(encoded.failure)
      })

    // Routing keys whose entities live on shards the victim holds.
    const victimShards = new Set(shardLocks(options.db, deploy.name).get(victim.address))
    const keys: Array<string> = []
    for (let i = 0; keys.length < CPU / 2; i++) {
      const shard = yield* entity.getShardId(EntityId.make(`key-${i}`))
      if (victimShards.has(shard.id)) keys.push(`key-${i}`)
    }

    const tiny = Effect.forEach(Array.from({ length: TINY }, (_, n) => n), (n) => attempt(Tasks.tiny, { id: `${tag}t${n}`, n }), {
      concurrency: 8
    })
    const cpu = Effect.forEach(
      Array.from({ length: CPU }, (_, n) => n),
      (n) => attempt(Tasks.cpu, { id: `${tag}c${n}`, rounds: ROUNDS }, keys[n]),
      { concurrency: "unbounded" }
    )
    const started = Date.now()
    const all = yield* Effect.forkChild(Effect.all([tiny, cpu], { concurrency: 2 }))

    // Kill the victim while it is inside a CPU task: one it started and has not finished.
    const victimPid = String(victim.child.pid)
    const inside = () => {
      const lines = executions(log).filter(([, id, pid]) => id.startsWith(tag) && pid === victimPid)
      const finished = new Set(lines.filter(([task]) => task === "cpu").map(([, id]) => id))
      return lines.find(([task, id]) => task === "cpu-start" && !finished.has(id))?.[1]
    }
    yield* Effect.sleep("20 millis").pipe(Effect.repeat({ until: () => inside() !== undefined }), Effect.timeout("60 seconds"))
    const interrupted = inside()!
    signal(victim, "SIGKILL")
    const killed = Date.now()

    const [tinyExits, cpuExits] = yield* Fiber.join(all).pipe(Effect.timeout("90 seconds"))
    const done = Date.now()
    tinyExits.forEach((exit, n) => assert.deepStrictEqual(exit, Exit.succeed(n + 1), `tiny ${n}`))
    cpuExits.forEach((exit, n) => assert.deepStrictEqual(exit, Exit.succeed(digest), `cpu ${n}`))

    const lines = executions(log).filter(([task, id]) => task !== "cpu-start" && id.startsWith(tag))
    const runs = new Map<string, Array<string>>()
    for (const [, id, pid] of lines) runs.set(id, [...(runs.get(id) ?? []), pid])
    assert.strictEqual(runs.size, TINY + CPU, "every task ran")
    const rerun = runs.get(interrupted)!
    assert.isFalse(rerun.includes(victimPid), `${interrupted} never finished on the killed runner`)
    return {
      delivery,
      secondsToKill: (killed - started) / 1000,
      secondsFromKillToLastResult: (done - killed) / 1000,
      ranMoreThanOnce: [...runs.values()].filter((pids) => pids.length > 1).length
    }
  })

describe("runner processes", () => {
  it.live("3 runners on one SQLite file; a runner SIGKILLed mid-task loses nothing (durable, then volatile); SIGTERM leaves gracefully", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "lateral-cluster-"))
      const db = join(dir, "cluster.db")
      const log = join(dir, "executions.log")
      const runners: Array<RunnerProcess> = []
      // Every process this test starts ends by its PID, whatever happens.
      yield* Effect.addFinalizer(() => Effect.promise(() => stopAll(runners, 2_000)))
      for (let i = 0; i < 3; i++) {
        const port = yield* freePort
        runners.push(startRunner({ port, db, modules: ["./test/fixtures/cluster/tasks.ts"], threads: 1, env: { LATERAL_TEST_EXEC_LOG: log } }))
      }
      const outputs = () => runners.map((runner) => `--- runner ${runner.address}\n${runner.output()}`).join("\n")
      const [first, second, third] = runners as [RunnerProcess, RunnerProcess, RunnerProcess]

      const figures = yield* Effect.gen(function*() {
        yield* waitForShards(db, deploy.name, runners.map((runner) => runner.address)).pipe(
          Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die(new Error(`runners did not start\n${outputs()}`)) })
        )
        const durable = yield* scenario({ delivery: "durable", victim: second, db, log })
        yield* waitForShards(db, deploy.name, [first.address, third.address]).pipe(Effect.timeout("30 seconds"))
        const volatile = yield* scenario({ delivery: "volatile", victim: third, db, log })
        return [durable, volatile]
      }).pipe(
        Effect.provide(Sharding.client({ deploy, db, sharding: fastFailover })),
        Effect.tapCause(() => Effect.sync(() => console.error(outputs())))
      )
      console.log(JSON.stringify(figures))

      // SIGTERM: the last runner leaves the cluster, releasing its shards, and exits.
      signal(first, "SIGTERM")
      const code = yield* Effect.promise(() => first.exited).pipe(Effect.timeout("20 seconds"))
      assert.strictEqual(code, 0, first.output())
      assert.strictEqual(shardLocks(db, deploy.name).size, 0, "no shard stays locked")
    }), 180_000)
})

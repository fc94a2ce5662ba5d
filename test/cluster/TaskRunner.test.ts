import { assert, describe, it, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Schema } from "effect"
import { TaskPool } from "effect-lateral"
import { fileURLToPath } from "node:url"
import { threadId } from "node:worker_threads"
import * as Client from "../../src/internal/cluster/client.ts"
import * as Deploy from "../../src/internal/cluster/deploy.ts"
import { taskRunner } from "../../src/internal/cluster/entity.ts"
import * as Handlers from "../../src/internal/cluster/handlers.ts"
import * as Modules from "../../src/internal/cluster/modules.ts"
import * as Sharding from "../../src/internal/cluster/sharding.ts"
import type { PortableTaskDef } from "../../src/internal/registry.ts"
import * as Tasks from "../fixtures/cluster/tasks.ts"
import { errorOf } from "../helpers.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const modules = Modules.make(root)
const deploy = Deploy.make("test")
const entity = taskRunner(deploy)

/** The runner side (handlers on a pool) and the cluster, in memory, in this process. */
const cluster = (pool: Layer.Layer<TaskPool.TaskPool>) =>
  Handlers.layer(entity, { modules, runner: "test" }).pipe(
    Layer.provideMerge(Sharding.memory(deploy)),
    Layer.provide(pool)
  )
const onThreads = cluster(TaskPool.layer({ threads: 1 }))
const inline = cluster(TaskPool.layer({ threads: 0 }))

/** What the pool knows of a portable task (`Task.make` keeps it under this symbol). */
const defOf = (task: object) => (task as Record<symbol, PortableTaskDef>)[Symbol.for("effect-lateral/Task")]!

/** The submitting side: one attempt of `task(payload)`. */
const attempt = <P>(
  task: object,
  payload: P,
  options: { readonly delivery?: Client.Delivery; readonly id?: string; readonly key?: string } = {}
) =>
  Effect.gen(function*() {
    const run = yield* Client.make({ entity, modules, delivery: options.delivery ?? "volatile", slots: 8 })
    const def = defOf(task)
    const encoded = def.portable.json.encodePayload(payload)
    if (encoded._tag === "Failure") return yield* Effect.die(encoded.failure)
    return yield* run({ def, payload: encoded.success as Schema.Json, id: options.id ?? crypto.randomUUID(), key: options.key })
  })

const deliveries = ["volatile", "durable"] as const

layer(onThreads, { excludeTestServices: true })("TaskRunner on an in-memory cluster, tasks on worker threads", (it) => {
  it.effect.each(deliveries)("%s: runs a portable task named by module and name, on the runner's worker threads", (delivery) =>
    Effect.gen(function*() {
      const exit = yield* attempt(Tasks.double, 21, { delivery })
      assert.isTrue(Exit.isSuccess(exit))
      const value = (exit as Exit.Success<{ readonly value: number; readonly thread: number }>).value
      assert.strictEqual(value.value, 42)
      assert.notStrictEqual(value.thread, threadId)
    }))

  it.effect.each(deliveries)("%s: typed errors and defects cross with their schemas", (delivery) =>
    Effect.gen(function*() {
      const failed = yield* attempt(Tasks.find, 3, { delivery })
      assert.instanceOf(errorOf(failed), Tasks.NotFound)
      assert.strictEqual((errorOf(failed) as Tasks.NotFound).id, 3)
      const died = yield* attempt(Tasks.explode, "kaboom", { delivery })
      const defect = Exit.isFailure(died) ? Cause.squash(died.cause) as Error : undefined
      assert.strictEqual(defect?.name, "RangeError")
      assert.strictEqual(defect?.message, "kaboom")
      assert.include(defect?.stack, "tasks.ts")
    }))

  it.effect.each(deliveries)("%s: binary payloads and results survive the JSON form", (delivery) =>
    Effect.gen(function*() {
      const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
      const exit = yield* attempt(Tasks.reverse, bytes, { delivery })
      assert.isTrue(Exit.isSuccess(exit))
      const value = (exit as Exit.Success<Uint8Array>).value
      assert.instanceOf(value, Uint8Array)
      assert.deepStrictEqual(Array.from(value), Array.from(bytes).reverse())
    }))

  it.effect("a task on a runner's worker thread that submits tasks fails with a defect that says why", () =>
    Effect.gen(function*() {
      const exit = yield* attempt(Tasks.sumOfDoubles, 10)
      const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) as Error : undefined
      assert.include(defect?.message, `Task "sumOfDoubles" cannot submit task "double": it runs on a cluster runner`)
    }))
})

layer(inline, { excludeTestServices: true })("TaskRunner on an in-memory cluster, tasks inline", (it) => {
  it.effect("runs one attempt: the task's retry is the submitter's", () =>
    Effect.gen(function*() {
      const exit = yield* attempt(Tasks.flaky, "flaky-once")
      assert.strictEqual((errorOf(exit) as Tasks.NotFound).id, 1)
      assert.strictEqual(Tasks.executions.get("flaky-once"), 1)
    }))

  it.effect("a failing task fails its request only: the runner's pool goes on", () =>
    Effect.gen(function*() {
      const failures = yield* Effect.forEach([1, 3, 5], (id) => attempt(Tasks.find, id), { concurrency: 3 })
      assert.isTrue(failures.every((exit) => errorOf(exit) instanceof Tasks.NotFound))
      const exit = yield* attempt(Tasks.find, 2)
      assert.deepStrictEqual(exit, Exit.succeed("item 2"))
    }))

  it.effect("durable: an attempt id sent twice runs once and gets the first reply", () =>
    Effect.gen(function*() {
      const first = yield* attempt(Tasks.count, "dedup", { delivery: "durable", id: "attempt-1" })
      const again = yield* attempt(Tasks.count, "dedup", { delivery: "durable", id: "attempt-1" })
      const other = yield* attempt(Tasks.count, "dedup", { delivery: "durable", id: "attempt-2" })
      assert.deepStrictEqual([first, again, other], [Exit.succeed(1), Exit.succeed(1), Exit.succeed(2)])
      assert.strictEqual(Tasks.executions.get("dedup"), 2)
    }))

  it.effect.each(deliveries)("%s: interrupting an attempt interrupts the task on its runner", (delivery) =>
    Effect.gen(function*() {
      const key = `hang-${delivery}`
      const fiber = yield* Effect.forkChild(attempt(Tasks.hang, key, { delivery }))
      yield* Effect.sleep("10 millis").pipe(Effect.repeat({ until: () => Tasks.hanging.started.has(key) }))
      yield* Fiber.interrupt(fiber)
      yield* Effect.sleep("10 millis").pipe(Effect.repeat({ until: () => Tasks.hanging.interrupted.has(key) }))
      assert.isTrue(Tasks.hanging.interrupted.has(key))
    }).pipe(Effect.timeout("10 seconds")))

  it.effect("a task the runner does not serve fails with a defect that names it", () =>
    Effect.gen(function*() {
      const run = yield* Client.make({ entity, modules, delivery: "volatile", slots: 1 })
      const unknown = { ...defOf(Tasks.double), name: "nope" } as PortableTaskDef
      const exit = yield* run({ def: unknown, payload: 1, id: "x" })
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(Cause.squash((exit as Exit.Failure<unknown, unknown>).cause)), `does not serve task "nope"`)
    }))

  it.effect("a payload the runner cannot decode fails with TaskPayloadError", () =>
    Effect.gen(function*() {
      const run = yield* Client.make({ entity, modules, delivery: "volatile", slots: 1 })
      const exit = yield* run({ def: defOf(Tasks.double), payload: "not a number", id: "y" })
      assert.strictEqual((errorOf(exit) as { readonly _tag: string })._tag, "TaskPayloadError")
    }))

  it.effect("a task module outside the root fails the attempt before it is sent", () =>
    Effect.gen(function*() {
      const run = yield* Client.make({ entity, modules: Modules.make(fileURLToPath(new URL("../../src", import.meta.url))), delivery: "volatile", slots: 1 })
      const exit = yield* run({ def: defOf(Tasks.double), payload: 1, id: "z" })
      assert.include(String(Cause.squash((exit as Exit.Failure<unknown, unknown>).cause)), "outside the cluster's root")
    }))

  it.effect("another deploy's runners never get the attempt", () =>
    Effect.gen(function*() {
      const other = taskRunner(Deploy.make("other"))
      const run = yield* Client.make({ entity: other, modules, delivery: "volatile", slots: 1 })
      const result = yield* run({ def: defOf(Tasks.count), payload: "other-deploy", id: "o" }).pipe(Effect.timeoutOption("500 millis"))
      assert.strictEqual(result._tag, "None", "no runner of deploy \"other\": the attempt waits")
      assert.isUndefined(Tasks.executions.get("other-deploy"))
    }))
})

describe("Deploy", () => {
  it("names tables and shard groups after the deploy id", () => {
    assert.strictEqual(Deploy.make("v42").name, "lateral_v42")
    assert.strictEqual(Deploy.make().name, "lateral_default")
    const dotted = Deploy.make("1.4.0").name
    assert.match(dotted, /^lateral_1_4_0_[0-9a-f]{8}$/)
    assert.notStrictEqual(dotted, Deploy.make("1_4_0").name)
    const sha = Deploy.make("3f1c9e0d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d").name
    assert.isAtMost(sha.length, 32)
    assert.notStrictEqual(sha, Deploy.make("3f1c9e0d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3e").name)
  })
})

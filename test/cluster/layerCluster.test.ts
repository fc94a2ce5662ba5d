/**
 * `TaskPool.layerCluster`'s pool on an in-memory cluster: the engine's
 * semantics (results, errors, groups and fail-fast, join, timeout, retry,
 * back-pressure, stats) with portable tasks' attempts sent through
 * `effect/cluster` to a runner's handlers in this process. The runner's pool
 * runs tasks inline (its counters are this module's) or on a worker thread.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Layer } from "effect"
import { Task, TaskPool } from "effect-lateral"
import { fileURLToPath } from "node:url"
import { threadId } from "node:worker_threads"
import * as Deploy from "../../src/internal/cluster/deploy.ts"
import { taskRunner } from "../../src/internal/cluster/entity.ts"
import * as Handlers from "../../src/internal/cluster/handlers.ts"
import * as Modules from "../../src/internal/cluster/modules.ts"
import * as ClusterPool from "../../src/internal/cluster/pool.ts"
import * as Sharding from "../../src/internal/cluster/sharding.ts"
import type { ParallelOptions } from "../../src/internal/parallel.ts"
import { TaskPayloadError, TaskTimeoutError } from "../../src/TaskError.ts"
import * as Tasks from "../fixtures/cluster/tasks.ts"
import { errorOf } from "../helpers.ts"

const modules = Modules.make(fileURLToPath(new URL("../..", import.meta.url)))
const deploy = Deploy.make("pool_test")

/** A runner's handlers on `runnerPool`, and the in-memory cluster they serve; the tests' pools send to it. */
const cluster = (runnerPool: Layer.Layer<TaskPool.TaskPool>) =>
  Handlers.layer(taskRunner(deploy), { modules, runner: "memory" }).pipe(
    Layer.provideMerge(Sharding.memory(deploy)),
    Layer.provide(runnerPool)
  )

type Delivery = "durable" | "volatile"
const deliveries: ReadonlyArray<Delivery> = ["volatile", "durable"]

/** `layerCluster`'s pool, on the in-memory cluster in context. */
const clusterPool = (
  options: {
    readonly delivery?: Delivery
    readonly maxWorkers?: number
    readonly blockWhenSaturated?: boolean
    readonly key?: (task: string, payload: unknown) => string | undefined
  } = {}
) => {
  const pool: ParallelOptions = {
    maxWorkers: options.maxWorkers ?? 16,
    threads: 0,
    timeout: undefined,
    blockWhenSaturated: options.blockWhenSaturated ?? false,
    resourceLimits: undefined,
    crashLimit: 3,
    warmUp: false
  }
  return Layer.effect(TaskPool.TaskPool, ClusterPool.make({ pool, deploy, modules, delivery: options.delivery ?? "volatile", key: options.key }))
}

/** A key no other test uses. */
let keys = 0
const fresh = (name: string) => `${name}-${++keys}`

/** The defect an exit died with. */
const defectOf = (exit: Exit.Exit<unknown, unknown>) => Exit.isFailure(exit) ? Cause.squash(exit.cause) as Error : undefined

const until = (condition: () => boolean) => Effect.sleep("5 millis").pipe(Effect.repeat({ until: condition }), Effect.timeout("5 seconds"))

/** One program of every kind of outcome, to run on a cluster and serially. */
const program = Effect.gen(function*() {
  const doubled = yield* Task.group(Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8], (n) => Tasks.double(n), { discard: true }), {
    results: [Tasks.double]
  })
  const sum = doubled.results(Tasks.double).reduce((total, result) => total + result.value, 0)
  const found = yield* Task.await(yield* Tasks.find(2))
  const notFound = yield* Task.group(Tasks.find(3)).pipe(Effect.as(0), Effect.catchTag("NotFound", (error) => Effect.succeed(error.id)))
  const died = defectOf(yield* Effect.exit(Task.group(Tasks.explode("kaboom"))))
  const bytes = yield* Task.await(yield* Tasks.reverse(Uint8Array.of(1, 2, 3)))
  return { sum, found, notFound, died: [died?.name, died?.message], bytes: Array.from(bytes) }
})

layer(cluster(TaskPool.layer({ threads: 0 })), { excludeTestServices: true })("layerCluster's pool on an in-memory cluster", (it) => {
  it.effect.each(deliveries)("%s: the same outcomes as the serial pool for one program", (delivery) =>
    Effect.gen(function*() {
      const serial = yield* Effect.provide(program, TaskPool.serial)
      const clustered = yield* Effect.provide(program, clusterPool({ delivery }))
      assert.deepStrictEqual(clustered, serial)
      assert.deepStrictEqual(clustered, { sum: 72, found: "item 2", notFound: 3, died: ["RangeError", "kaboom"], bytes: [3, 2, 1] })
    }))

  it.effect("a typed error is caught by its tag around Task.await, as an instance of its class", () =>
    Effect.gen(function*() {
      const error = yield* Task.group(Effect.flatMap(Tasks.find(5), Task.await)).pipe(Effect.flip)
      assert.instanceOf(error, Tasks.NotFound)
      assert.strictEqual((error as Tasks.NotFound).id, 5)
    }).pipe(Effect.provide(clusterPool())))

  it.effect.each(deliveries)("%s: a failing task fails its group at once and interrupts the others on their runner", (delivery) =>
    Effect.gen(function*() {
      const hung = [fresh("ff"), fresh("ff"), fresh("ff")]
      const error = yield* Task.group(Effect.gen(function*() {
        for (const key of hung) yield* Tasks.hang(key)
        yield* until(() => hung.every((key) => Tasks.hanging.started.has(key)))
        yield* Tasks.find(1)
      })).pipe(Effect.flip, Effect.provide(clusterPool({ delivery })))
      assert.instanceOf(error, Tasks.NotFound)
      yield* until(() => hung.every((key) => Tasks.hanging.interrupted.has(key)))
    }))

  it.effect("a failure outside any group fails the program and interrupts the pool's tasks on their runner", () =>
    Effect.gen(function*() {
      const key = fresh("root")
      const exit = yield* Effect.exit(Effect.gen(function*() {
        yield* Tasks.hang(key)
        yield* until(() => Tasks.hanging.started.has(key))
        yield* Tasks.find(7)
      }).pipe(Effect.provide(clusterPool())))
      assert.instanceOf(errorOf(exit), Tasks.NotFound)
      assert.isTrue(Tasks.hanging.interrupted.has(key), "interrupted before the pool's scope closed")
    }))

  it.effect("join waits for every task sent, then stats count them", () =>
    Effect.gen(function*() {
      const prefix = fresh("join")
      const stats = yield* Effect.gen(function*() {
        for (let n = 0; n < 20; n++) yield* Tasks.count(`${prefix}-${n}`)
        yield* TaskPool.join
        for (let n = 0; n < 20; n++) assert.strictEqual(Tasks.executions.get(`${prefix}-${n}`), 1)
        yield* Effect.exit(Task.group(Tasks.find(1)))
        return yield* TaskPool.stats
      }).pipe(Effect.provide(clusterPool()))
      const { byTask, ...counts } = stats
      assert.deepStrictEqual(counts, { submitted: 21, succeeded: 20, failed: 1, interrupted: 0, running: 0, queued: 0, threads: 0 })
      assert.deepStrictEqual([byTask.count?.succeeded, byTask.find?.failed], [20, 1])
    }))

  it.effect("a task's timeout fails it with TaskTimeoutError and interrupts it on its runner", () =>
    Effect.gen(function*() {
      const key = fresh("timeout")
      const error = yield* Task.group(Tasks.hangBriefly(key)).pipe(Effect.flip, Effect.provide(clusterPool()))
      assert.instanceOf(error, TaskTimeoutError)
      assert.strictEqual((error as TaskTimeoutError).task, "hangBriefly")
      yield* until(() => Tasks.hanging.interrupted.has(key))
    }))

  it.effect("durable: each retry is a new attempt, with an id of its own (a repeated id would get the first reply)", () =>
    Effect.gen(function*() {
      const key = fresh("retry")
      const error = yield* Task.group(Tasks.flaky(key)).pipe(Effect.flip, Effect.provide(clusterPool({ delivery: "durable" })))
      // flaky fails with its execution count and is retried 3 times.
      assert.strictEqual((error as Tasks.NotFound).id, 4)
      assert.strictEqual(Tasks.executions.get(key), 4)
    }))

  it.effect("maxWorkers bounds the attempts in flight, counted on the runner", () =>
    Effect.gen(function*() {
      const key = fresh("inflight")
      const seen = yield* Effect.gen(function*() {
        for (let n = 0; n < 12; n++) yield* Tasks.sleepy({ key, millis: 20 })
        const stats = yield* TaskPool.stats
        yield* TaskPool.join
        return stats
      }).pipe(Effect.provide(clusterPool({ maxWorkers: 3 })))
      assert.deepStrictEqual([seen.running, seen.queued], [3, 9])
      assert.strictEqual(Tasks.inFlight.get(key)!.max, 3)
    }))

  it.effect("blockWhenSaturated: a submit waits for a free lane, so nothing queues", () =>
    Effect.gen(function*() {
      const key = fresh("blocking")
      const queued = yield* Effect.gen(function*() {
        let most = 0
        for (let n = 0; n < 12; n++) {
          yield* Tasks.sleepy({ key, millis: 10 })
          most = Math.max(most, (yield* TaskPool.stats).queued)
        }
        return most
      }).pipe(Effect.provide(clusterPool({ maxWorkers: 2, blockWhenSaturated: true })))
      assert.strictEqual(queued, 0)
      assert.strictEqual(Tasks.inFlight.get(key)!.max, 2)
    }))

  it.effect("progress ends on the true totals", () =>
    Effect.gen(function*() {
      let last: TaskPool.Progress | undefined
      yield* Effect.gen(function*() {
        yield* TaskPool.onProgress("50 millis", (progress) => Effect.sync(() => (last = progress)))
        for (let n = 0; n < 10; n++) yield* Tasks.sleepy({ key: fresh("progress"), millis: 5 })
      }).pipe(Effect.provide(clusterPool()))
      assert.deepStrictEqual([last?.finished, last?.submitted, last?.succeeded], [10, 10, 10])
    }))

  it.effect("a payload outside the JSON form fails the submit with TaskPayloadError naming the task", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Tasks.echo(10n))
      assert.instanceOf(error, TaskPayloadError)
      assert.strictEqual((error as TaskPayloadError).task, "echo")
      assert.deepStrictEqual(yield* Task.await(yield* Tasks.echo({ a: [1, "b"] })), { a: [1, "b"] })
    }).pipe(Effect.provide(clusterPool())))

  it.effect("the routing key is computed once per run, from the task and its argument", () =>
    Effect.gen(function*() {
      const calls: Array<readonly [string, unknown]> = []
      const key = (task: string, payload: unknown) => {
        calls.push([task, payload])
        return `tenant-${(payload as number) % 2}`
      }
      const results = yield* Task.group(Effect.forEach([1, 2, 3], (n) => Tasks.double(n), { discard: true }), { results: [Tasks.double] }).pipe(
        Effect.provide(clusterPool({ key }))
      )
      assert.deepStrictEqual(results.results(Tasks.double).map((result) => result.value).sort(), [2, 4, 6])
      assert.deepStrictEqual(calls.sort(), [["double", 1], ["double", 2], ["double", 3]])
    }))

  it.effect("a key function that throws fails that task", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Task.group(Tasks.double(1)).pipe(Effect.provide(clusterPool({
        key: () => {
          throw new Error("no key")
        }
      }))))
      assert.strictEqual(defectOf(exit)?.message, "no key")
    }))

  it.effect("tasks on a runner cannot submit, group or join tasks: each fails with a defect that says why", () =>
    Effect.gen(function*() {
      const submits = defectOf(yield* Effect.exit(Task.group(Tasks.submitsOne(1))))
      assert.include(submits?.message, `Task "submitsOne" cannot submit task "double": it runs on a cluster runner`)
      const groups = defectOf(yield* Effect.exit(Task.group(Tasks.sumOfDoubles(3))))
      assert.include(groups?.message, `Task "sumOfDoubles" cannot open a Task.group: it runs on a cluster runner`)
      const joins = defectOf(yield* Effect.exit(Task.group(Tasks.joins(1))))
      assert.include(joins?.message, `Task "joins" cannot use TaskPool.join: it runs on a cluster runner`)
    }).pipe(Effect.provide(clusterPool())))
})

layer(cluster(TaskPool.layer({ threads: 1 })), { excludeTestServices: true })("layerCluster's pool, the runner on a worker thread", (it) => {
  it.effect("portable tasks run on the runner, other tasks on the program's lanes", () =>
    Effect.gen(function*() {
      const here = Task.make("here", () => Effect.sync(() => threadId))
      const remote = yield* Task.await(yield* Tasks.double(21))
      const local = yield* Task.await(yield* here())
      assert.strictEqual(remote.value, 42)
      assert.notStrictEqual(remote.thread, threadId, "the submitting pool has no worker threads: the runner's pool ran it")
      assert.strictEqual(local, threadId)
      assert.strictEqual((yield* TaskPool.stats).threads, 0)
    }).pipe(Effect.provide(clusterPool())))

  it.effect("a task on the runner's worker thread cannot submit tasks either", () =>
    Effect.gen(function*() {
      const defect = defectOf(yield* Effect.exit(Task.group(Tasks.sumOfDoubles(3)).pipe(Effect.provide(clusterPool()))))
      assert.include(defect?.message, `Task "sumOfDoubles" cannot submit task "double": it runs on a cluster runner`)
    }))
})

describe("TaskPool.layerCluster's options", () => {
  it.effect.each([
    [{ db: "" }, `db must be a SQLite file or a postgres:// URL, got ""`],
    [{ db: "x.db", delivery: "sometimes" }, `delivery must be "durable" or "volatile", got "sometimes"`],
    [{ db: "x.db", maxWorkers: 0 }, "maxWorkers must be a positive integer, got 0"],
    [{ db: "x.db", deploy: "" }, "deploy \"\": A deploy id must not be empty"],
    [{ db: "x.db", root: "/no/such/directory" }, `root "/no/such/directory" cannot be read`]
  ] as const)("refuses %j", ([options, message]) =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(TaskPool.layerCluster(options as TaskPool.ClusterOptions)))
      assert.include(defectOf(exit)?.message, `TaskPool.layerCluster: ${message}`)
    }))
})

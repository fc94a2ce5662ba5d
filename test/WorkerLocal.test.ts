import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Task, TaskPool, WorkerLocal } from "effect-lateral"
import { Boom } from "./helpers.ts"

/** A resource that records its life, and flags any two tasks using one instance at once. */
const connections = () => {
  const log: Array<string> = []
  let created = 0
  let overlaps = 0
  const connection = WorkerLocal.make(
    Effect.acquireRelease(
      Effect.sync(() => {
        const id = ++created
        log.push(`open ${id}`)
        return { id, busy: false }
      }),
      (conn) => Effect.sync(() => log.push(`close ${conn.id}`))
    )
  )
  const query = Task.make("query", (millis: number) =>
    Effect.gen(function*() {
      const conn = yield* connection
      if (conn.busy) overlaps++
      conn.busy = true
      yield* Effect.sleep(millis)
      conn.busy = false
      return conn.id
    }))
  return { connection, query, log, created: () => created, overlaps: () => overlaps }
}

describe("WorkerLocal", () => {
  it.effect("with maxWorkers 2, at most 2 instances, never used by two tasks at once", () =>
    Effect.gen(function*() {
      const { created, overlaps, query } = connections()
      const program = Effect.gen(function*() {
        const group = yield* Task.group(
          Effect.gen(function*() {
            for (let i = 0; i < 10; i++) yield* query(10 + i)
          }),
          { results: [query] }
        )
        return group.results(query)
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2 })))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(1000)
      const ids = yield* Fiber.join(fiber)
      assert.strictEqual(ids.length, 10)
      assert.strictEqual(created(), 2)
      assert.deepStrictEqual([...new Set(ids)].sort(), [1, 2])
      assert.strictEqual(overlaps(), 0)
    }))

  it.effect("under serial, exactly one instance, shared with the code around the tasks", () =>
    Effect.gen(function*() {
      const { connection, created, query } = connections()
      const program = Effect.gen(function*() {
        for (let i = 0; i < 5; i++) yield* query(1)
        return (yield* connection).id
      }).pipe(Effect.provide(TaskPool.serial))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(10)
      assert.strictEqual(yield* Fiber.join(fiber), 1)
      assert.strictEqual(created(), 1)
    }))

  it.effect("instances are acquired lazily and released when the pool closes, after the tasks", () =>
    Effect.gen(function*() {
      const { log, query } = connections()
      const noop = Task.make("noop", () => Effect.void)
      yield* Effect.asVoid(noop()).pipe(Effect.provide(TaskPool.layer()))
      assert.deepStrictEqual(log, [], "no task used it: nothing acquired")

      const program = Effect.gen(function*() {
        yield* query(50)
        yield* Effect.sync(() => log.push("body done"))
      }).pipe(Effect.provide(TaskPool.layer()))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(50)
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(log, ["open 1", "body done", "close 1"])
    }))

  it.effect("a failed acquisition is not cached: the next use tries again", () =>
    Effect.gen(function*() {
      let attempts = 0
      const flaky = WorkerLocal.make(Effect.suspend(() => ++attempts === 1 ? Effect.fail(new Boom({ id: 0 })) : Effect.succeed(attempts)))
      const use = Task.make("use", () => flaky.pipe(Effect.orElseSucceed(() => -1)))
      const values = yield* Effect.gen(function*() {
        const first = yield* Effect.flatMap(use(), Task.await)
        const second = yield* Effect.flatMap(use(), Task.await)
        return [first, second]
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1 })))
      assert.deepStrictEqual(values, [-1, 2])
    }))

  it.effect("a task keeps its instance while it waits for its children, who get their own", () =>
    Effect.gen(function*() {
      const { connection, created, overlaps, query } = connections()
      const parent = Task.make("parent", () =>
        Effect.gen(function*() {
          const before = (yield* connection).id
          yield* Task.group(Effect.andThen(query(10), query(10)))
          const after = (yield* connection).id
          return [before, after]
        }))
      const program = Effect.flatMap(parent(), Task.await).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2 })))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(100)
      const [before, after] = yield* Fiber.join(fiber)
      assert.strictEqual(before, after)
      assert.strictEqual(created(), 3, "one for the waiting parent, one for each running child")
      assert.strictEqual(overlaps(), 0)
    }))
})

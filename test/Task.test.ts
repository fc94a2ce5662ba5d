import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { Task, TaskError, TaskPool } from "effect-lateral"
import { bothPools, Boom, concurrency, errorOf, fiberTracker, settle } from "./helpers.ts"

const fetchUser = Task.make("fetchUser", (id: number) => Effect.sleep(10 * id).pipe(Effect.as({ id, name: `user ${id}` })))
const countWords = Task.make("countWords", (text: string) => Effect.succeed(text.split(" ").length))
const fail = Task.make("fail", (id: number) => Effect.sleep(5).pipe(Effect.andThen(Effect.fail(new Boom({ id })))))

/** Forks `effect`, moves the test clock by `millis`, and joins it. */
const runFor = <A, E>(millis: number, effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(effect)
    yield* TestClock.adjust(millis)
    return yield* Fiber.join(fiber)
  })

describe("Task.make", () => {
  it("makes a callable task that knows its name", () => {
    assert.strictEqual(fetchUser.name, "fetchUser")
    assert.isTrue(Task.isTask(fetchUser))
    assert.isFalse(Task.isTask(() => 1))
  })

  it.effect.each(bothPools)("%s: a handle is awaitable and typed", ([, pool]) =>
    runFor(
      100,
      Effect.gen(function*() {
        const handle = yield* fetchUser(2)
        assert.isTrue(Task.isHandle(handle))
        const user = yield* Task.await(handle)
        assert.deepStrictEqual(user, { id: 2, name: "user 2" })
      }).pipe(Effect.provide(pool))
    ))

  it.effect.each(bothPools)("%s: timeout fails an attempt with TaskTimeoutError naming the task", ([, pool]) =>
    Effect.gen(function*() {
      const slow = Task.make("slow", () => Effect.sleep("1 minute").pipe(Effect.as("done")), { timeout: "1 second" })
      const error = yield* runFor(
        1000,
        Effect.flatMap(slow(), Task.await).pipe(Effect.provide(pool), Effect.flip)
      )
      assert.instanceOf(error, TaskError.TaskTimeoutError)
      assert.strictEqual(error.task, "slow")
      assert.strictEqual(error.message, `Task "slow" timed out after 1s`)
    }))

  it.effect.each(bothPools)("%s: retry runs the task again with its schedule", ([, pool]) =>
    Effect.gen(function*() {
      let attempts = 0
      const flaky = Task.make(
        "flaky",
        () => Effect.suspend(() => ++attempts < 3 ? Effect.fail(new Boom({ id: attempts })) : Effect.succeed(attempts)),
        { retry: Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 5 })) }
      )
      const result = yield* runFor(200, Effect.flatMap(flaky(), Task.await).pipe(Effect.provide(pool)))
      assert.strictEqual(result, 3)
    }))

  it.effect("timeout applies to each attempt, and retry retries a timeout", () =>
    Effect.gen(function*() {
      let attempts = 0
      const sometimesSlow = Task.make(
        "sometimesSlow",
        () => Effect.suspend(() => ++attempts === 1 ? Effect.as(Effect.sleep("1 hour"), attempts) : Effect.succeed(attempts)),
        { timeout: "1 second", retry: Schedule.recurs(1) }
      )
      const result = yield* runFor(1000, Effect.flatMap(sometimesSlow(), Task.await).pipe(Effect.provide(TaskPool.layer())))
      assert.strictEqual(result, 2)
    }))

  it.effect("a task that throws while building its effect fails with a defect, not the caller", () =>
    Effect.gen(function*() {
      const broken = Task.make("broken", (): Effect.Effect<void> => {
        throw new Error("bad build")
      })
      const exit = yield* Effect.gen(function*() {
        const handle = yield* broken()
        return yield* Effect.exit(Task.await(handle))
      }).pipe(Effect.provide(TaskPool.layer()), Effect.exit)
      assert.isTrue(Exit.isFailure(exit))
    }))
})

describe("Task.group", () => {
  it.effect.each(bothPools)("%s: waits for its tasks and reports their results by task", ([, pool]) =>
    runFor(
      100,
      Effect.gen(function*() {
        const group = yield* Task.group(
          Effect.gen(function*() {
            for (const id of [3, 1, 2]) yield* fetchUser(id)
            yield* countWords("one two three")
            return "body value"
          }),
          { results: [fetchUser, countWords] }
        )
        assert.strictEqual(group.value, "body value")
        assert.deepStrictEqual(group.results(fetchUser).map((user) => user.id).sort(), [1, 2, 3])
        assert.deepStrictEqual(group.results(countWords), [3])
      }).pipe(Effect.provide(pool))
    ))

  it.effect.each(bothPools)("%s: results of two groups stay independent", ([, pool]) =>
    runFor(
      100,
      Effect.gen(function*() {
        const first = yield* Task.group(Effect.asVoid(fetchUser(1)), { results: [fetchUser] })
        const second = yield* Task.group(Effect.andThen(fetchUser(2), fetchUser(3)), { results: [fetchUser] })
        assert.deepStrictEqual(first.results(fetchUser).map((user) => user.id), [1])
        assert.deepStrictEqual(second.results(fetchUser).map((user) => user.id).sort(), [2, 3])
      }).pipe(Effect.provide(pool))
    ))

  it.effect.each(bothPools)("%s: includes the descendants of its tasks, and nests", ([, pool]) =>
    runFor(
      1000,
      Effect.gen(function*() {
        const leaf = Task.make("leaf", (n: number) => Effect.sleep(n).pipe(Effect.as(n)))
        const branch = Task.make("branch", (n: number) =>
          Effect.gen(function*() {
            yield* leaf(n * 10)
            yield* leaf(n * 10 + 1)
            const inner = yield* Task.group(Effect.asVoid(leaf(n * 100)), { results: [leaf] })
            return inner.results(leaf)
          }))
        const outer = yield* Task.group(Effect.andThen(branch(1), branch(2)), { results: [leaf, branch] })
        assert.deepStrictEqual([...outer.results(leaf)].sort((a, b) => a - b), [10, 11, 20, 21])
        assert.deepStrictEqual(outer.results(branch).map((values) => values[0]).sort(), [100, 200])
      }).pipe(Effect.provide(pool))
    ))

  it.effect("concurrent groups in different tasks keep their own results", () =>
    runFor(
      100,
      Effect.gen(function*() {
        const collect = Task.make("collect", (ids: ReadonlyArray<number>) =>
          Effect.map(
            Task.group(Effect.forEach(ids, (id) => fetchUser(id), { discard: true }), { results: [fetchUser] }),
            (group) => group.results(fetchUser).map((user) => user.id).sort()
          ))
        const a = yield* collect([1, 2])
        const b = yield* collect([3, 4, 5])
        assert.deepStrictEqual([yield* Task.await(a), yield* Task.await(b)], [[1, 2], [3, 4, 5]])
      }).pipe(Effect.provide(TaskPool.layer()))
    ))

  it.effect.each(bothPools)("%s: fails fast with its task's error and can be handled", ([, pool]) =>
    runFor(
      10,
      Effect.gen(function*() {
        const log: Array<string> = []
        const result = yield* Task.group(Effect.gen(function*() {
          yield* fail(4)
          yield* Effect.sleep("1 hour")
          log.push("body finished")
        })).pipe(Effect.catchTag("Boom", (error) => Effect.succeed(`handled ${error.id}`)))
        yield* fetchUser(0)
        assert.strictEqual(result, "handled 4")
        assert.deepStrictEqual(log, [])
      }).pipe(Effect.provide(pool))
    ))

  it.effect("a failing task interrupts the body and the group's other tasks at once", () =>
    Effect.gen(function*() {
      const interrupted: Array<string> = []
      const tracker = fiberTracker()
      const long = Task.make("long", () => Effect.andThen(tracker.track, Effect.never).pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted.push("task")))))
      const program = Task.group(Effect.gen(function*() {
        yield* long()
        yield* fail(1)
        yield* Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted.push("body"))))
      })).pipe(Effect.provide(TaskPool.layer()))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(5)
      assert.deepStrictEqual(errorOf(yield* Fiber.await(fiber)), new Boom({ id: 1 }))
      assert.deepStrictEqual(interrupted.sort(), ["body", "task"])
      assert.isTrue(tracker.allDone())
    }))

  it.effect("fails fast even when a task fails while the body is still starting", () =>
    Effect.gen(function*() {
      const failNow = Task.make("failNow", () => Effect.fail(new Boom({ id: 9 })))
      const program = Task.group(Effect.andThen(failNow(), Effect.sleep("1 hour"))).pipe(Effect.provide(TaskPool.layer()))
      const fiber = yield* Effect.forkChild(program)
      yield* settle
      assert.deepStrictEqual(errorOf(yield* Fiber.await(fiber)), new Boom({ id: 9 }))
    }))

  it.effect("a retried attempt holds the lane, so maxWorkers still holds", () =>
    Effect.gen(function*() {
      let attempts = 0
      const meter = concurrency()
      const child = Task.make("child", () => meter.around(Effect.sleep(600)))
      const parent = Task.make("parent", () =>
        Effect.gen(function*() {
          if (attempts++ === 0) yield* Effect.flatMap(child(), Task.await) // times out while its child runs
          yield* meter.around(Effect.sleep(200))
        }), { timeout: 250, retry: Schedule.recurs(1) })
      const fiber = yield* Effect.forkChild(Effect.asVoid(parent()).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1 }))))
      yield* TestClock.adjust(1000)
      yield* Fiber.join(fiber)
      assert.strictEqual(meter.max(), 1)
    }))

  it.effect("a failing body interrupts the group's tasks and fails the group", () =>
    Effect.gen(function*() {
      const tracker = fiberTracker()
      const long = Task.make("long", () => Effect.andThen(tracker.track, Effect.never))
      const exit = yield* Task.group(Effect.gen(function*() {
        yield* long()
        yield* settle
        return yield* new Boom({ id: 2 })
      })).pipe(Effect.provide(TaskPool.layer()), Effect.exit)
      assert.deepStrictEqual(errorOf(exit), new Boom({ id: 2 }))
      assert.isTrue(tracker.allDone())
    }))

  it.effect("interrupting a group's caller stops its body and tasks", () =>
    Effect.gen(function*() {
      const tracker = fiberTracker()
      const long = Task.make("long", () => Effect.andThen(tracker.track, Effect.never))
      const started = yield* Deferred.make<void>()
      const program = Task.group(Effect.gen(function*() {
        yield* long()
        yield* Deferred.succeed(started, undefined)
      })).pipe(Effect.provide(TaskPool.layer()))
      const fiber = yield* Effect.forkChild(program)
      yield* Deferred.await(started)
      yield* settle
      yield* Fiber.interrupt(fiber)
      assert.isTrue(tracker.allDone())
    }))

  it.effect("a body that interrupts its caller in its first synchronous steps stops the group's tasks", () =>
    Effect.gen(function*() {
      const tracker = fiberTracker()
      const long = Task.make("long", () => Effect.andThen(tracker.track, Effect.never))
      let caller: Fiber.Fiber<unknown, unknown> | undefined
      const body = Effect.gen(function*() {
        yield* long()
        yield* long()
        caller!.interruptUnsafe()
        yield* long()
      })
      const exit = yield* Effect.withFiber((fiber) => {
        caller = fiber
        return Task.group(body)
      }).pipe(Effect.forkChild, Effect.flatMap(Fiber.await))
      assert.isTrue(Exit.hasInterrupts(exit))
      // The body runs on in its own fiber until the caller's interruption reaches the group.
      assert.strictEqual(tracker.count(), 3)
      assert.isTrue(tracker.allDone())
    }).pipe(Effect.provide(TaskPool.layer())))

  it.effect("a failure in a group inside a task fails that task, and the pool", () =>
    Effect.gen(function*() {
      const parent = Task.make("parent", () => Task.group(Effect.asVoid(fail(6))))
      const exit = yield* runFor(5, Effect.asVoid(parent()).pipe(Effect.provide(TaskPool.layer()), Effect.exit))
      assert.deepStrictEqual(errorOf(exit), new Boom({ id: 6 }))
    }))
})

import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Task, TaskError, TaskPool } from "effect-lateral"
import { bothPools, Boom, concurrency, errorOf, fiberTracker, settle } from "./helpers.ts"

/** Finishes later for smaller numbers, so that completion order is the reverse of item order. */
const late = Task.make("late", (n: number) => Effect.sleep(100 - n).pipe(Effect.as(n * 10)))
const failAt = (bad: number) =>
  Task.make("failAt", (n: number) => n === bad ? Effect.fail(new Boom({ id: n })) : Effect.sleep(10))

/** Forks `effect`, moves the test clock by `millis`, and joins it. */
const runFor = <A, E>(millis: number, effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(effect)
    yield* TestClock.adjust(millis)
    return yield* Fiber.join(fiber)
  })

/** A generator of 0..n-1 that records how many items were taken and whether it was closed. */
const counted = (n: number) => {
  const state = { taken: 0, closed: false }
  function* items() {
    try {
      for (let i = 0; i < n; i++) {
        state.taken++
        yield i
      }
    } finally {
      state.closed = true
    }
  }
  return { items: items(), state }
}

describe("Task.forEach", () => {
  it.effect.each(bothPools)("%s: returns the results in the order of the items", ([, pool]) =>
    runFor(
      10_000,
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* Task.forEach([1, 2, 3, 4, 5, 6], late), [10, 20, 30, 40, 50, 60])
        assert.deepStrictEqual(yield* Task.forEach([], late), [])
      }).pipe(Effect.provide(pool))
    ))

  it.effect.each(bothPools)("%s: takes a Stream, and is pipeable", ([, pool]) =>
    runFor(
      10_000,
      Effect.gen(function*() {
        const results = yield* Stream.range(1, 9).pipe(Stream.rechunk(4), Task.forEach(late))
        assert.deepStrictEqual(results, [10, 20, 30, 40, 50, 60, 70, 80, 90])
      }).pipe(Effect.provide(pool))
    ))

  it.effect.each(bothPools)("%s: discard runs every item and keeps nothing", ([, pool]) =>
    Effect.gen(function*() {
      let ran = 0
      const count = Task.make("count", (_: number) => Effect.sync(() => ran++))
      const result = yield* Task.forEach(counted(10_000).items, count, { discard: true })
      assert.strictEqual(result, undefined)
      assert.strictEqual(ran, 10_000)
    }).pipe(Effect.provide(pool)))

  it.effect("takes items only as lanes free up: at most maxWorkers ahead of the finished ones", () =>
    Effect.gen(function*() {
      const { items, state } = counted(50)
      let finished = 0
      let mostAhead = 0
      const work = Task.make("work", (_: number) =>
        Effect.sleep(1).pipe(Effect.ensuring(Effect.sync(() => {
          mostAhead = Math.max(mostAhead, state.taken - finished)
          finished++
        }))))
      yield* runFor(100, Task.forEach(items, work, { discard: true }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 3 }))))
      assert.strictEqual(finished, 50)
      assert.strictEqual(mostAhead, 3)
    }))

  it.effect("runs at most maxWorkers items at once", () =>
    Effect.gen(function*() {
      const meter = concurrency()
      const work = Task.make("work", (n: number) => meter.around(Effect.sleep(n % 7)))
      yield* runFor(1000, Task.forEach(Array.from({ length: 200 }, (_, i) => i), work).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 4 }))))
      assert.strictEqual(meter.max(), 4)
    }))

  it.effect.each(bothPools)("%s: the first failure stops taking items and fails the call, which can handle it", ([, pool]) =>
    runFor(
      10_000,
      Effect.gen(function*() {
        const { items, state } = counted(1000)
        const result = yield* Task.forEach(items, failAt(5), { discard: true }).pipe(
          Effect.catchTag("Boom", (error) => Effect.succeed(`handled ${error.id}`))
        )
        assert.strictEqual(result, "handled 5")
        assert.isBelow(state.taken, 20)
        assert.isTrue(state.closed)
        // The failure belonged to the call: the pool goes on.
        assert.deepStrictEqual(yield* Task.forEach([1], late), [10])
      }).pipe(Effect.provide(pool))
    ))

  it.effect("a failure interrupts the items still running", () =>
    Effect.gen(function*() {
      const tracker = fiberTracker()
      const work = Task.make("work", (n: number) => n === 3 ? Effect.fail(new Boom({ id: 3 })) : Effect.andThen(tracker.track, Effect.never))
      const exit = yield* runFor(10, Task.forEach([0, 1, 2, 3, 4], work).pipe(Effect.provide(TaskPool.layer()), Effect.exit))
      assert.deepStrictEqual(errorOf(exit), new Boom({ id: 3 }))
      assert.strictEqual(tracker.count(), 3)
      assert.isTrue(tracker.allDone())
    }))

  it.effect.each(bothPools)("%s: a stream's failure fails the call", ([, pool]) =>
    runFor(
      10_000,
      Effect.gen(function*() {
        const items = Stream.concat(Stream.make(1, 2), Stream.fail(new Boom({ id: 42 })))
        const exit = yield* Effect.exit(Task.forEach(items, late))
        assert.deepStrictEqual(errorOf(exit), new Boom({ id: 42 }))
      }).pipe(Effect.provide(pool))
    ))

  it.effect("interrupting the caller stops the items and closes the source", () =>
    Effect.gen(function*() {
      const tracker = fiberTracker()
      const { items, state } = counted(1000)
      const started = yield* Deferred.make<void>()
      const work = Task.make("work", (_: number) =>
        Effect.andThen(tracker.track, Effect.andThen(Deferred.succeed(started, undefined), Effect.never)))
      const fiber = yield* Effect.forkChild(Task.forEach(items, work).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2 }))))
      yield* Deferred.await(started)
      yield* settle
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(tracker.count(), 2)
      assert.isTrue(tracker.allDone())
      assert.isTrue(state.closed)
    }))

  it.effect("inside a task, and nested, even with maxWorkers 1", () =>
    Effect.gen(function*() {
      const inner = Task.make("inner", (n: number) => Effect.sleep(1).pipe(Effect.as(n + 1)))
      const outer = Task.make("outer", (n: number) => Effect.map(Task.forEach([n, n, n], inner), (results) => results.reduce((a, b) => a + b)))
      const parent = Task.make("parent", () => Task.forEach([0, 10, 20], outer))
      const results = yield* runFor(
        100,
        Effect.flatMap(parent(), Task.await).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1 })))
      )
      assert.deepStrictEqual(results, [3, 33, 63])
    }))

  it.effect.each(bothPools)("%s: waits for what its items submit, and a failure there fails it", ([, pool]) =>
    runFor(
      10_000,
      Effect.gen(function*() {
        const done: Array<number> = []
        const child = Task.make("child", (n: number) => n === 7 ? Effect.fail(new Boom({ id: 7 })) : Effect.sync(() => done.push(n)))
        const parent = Task.make("parent", (n: number) => Effect.asVoid(child(n)))
        yield* Task.forEach([1, 2, 3], parent, { discard: true })
        assert.deepStrictEqual(done.sort(), [1, 2, 3])
        const exit = yield* Effect.exit(Task.forEach([7], parent))
        assert.deepStrictEqual(errorOf(exit), new Boom({ id: 7 }))
      }).pipe(Effect.provide(pool))
    ))

  it.effect("inside a Task.group, a handled failure leaves the group alone", () =>
    Effect.gen(function*() {
      const result = yield* Task.group(
        Task.forEach([1, 5], failAt(5)).pipe(Effect.catchTag("Boom", () => Effect.succeed("handled")))
      )
      assert.strictEqual(result, "handled")
    }).pipe(Effect.provide(TaskPool.layer()), (effect) => runFor(50, effect)))

  it.effect("a long run of tasks that finish at once lets other fibers run", () =>
    Effect.gen(function*() {
      let turns = 0
      const other = yield* Effect.forkChild(Effect.forever(Effect.andThen(Effect.sync(() => turns++), Effect.yieldNow)))
      let turnsSeenByLastItem = -1
      const quick = Task.make("quick", (n: number) => Effect.sync(() => {
        if (n === 49_999) turnsSeenByLastItem = turns
      }))
      yield* Task.forEach(counted(50_000).items, quick, { discard: true }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 4 })))
      yield* Fiber.interrupt(other)
      assert.isAbove(turnsSeenByLastItem, 0)
    }))

  it.effect("a payload that cannot cross to a thread fails the call with the task's name", () =>
    Effect.gen(function*() {
      const { Schema } = yield* Effect.promise(() => import("effect"))
      const portable = Task.make("portable", (n: number) => Effect.succeed(n), {
        module: import.meta.url,
        payload: Schema.Int,
        success: Schema.Number
      })
      const exit = yield* Task.forEach([1, 1.5], portable).pipe(Effect.provide(TaskPool.layer({ threads: 0 })), Effect.exit)
      const error = errorOf(exit)
      assert.instanceOf(error, TaskError.TaskPayloadError)
      assert.include(String((error as TaskError.TaskPayloadError).message), "portable")
    }))

  describe("regressions", () => {
    const slow = Task.make("slow", (n: number) => Effect.sleep(5).pipe(Effect.as(n * 10)))

    it.effect("a stream's last item is in the result when nothing else runs", () =>
      runFor(
        1000,
        Effect.gen(function*() {
          assert.deepStrictEqual(yield* Task.forEach(Stream.make(1, 2), slow), [10, 20])
          assert.deepStrictEqual(yield* Task.forEach(Stream.range(1, 6).pipe(Stream.rechunk(3)), slow), [10, 20, 30, 40, 50, 60])
        }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1 })))
      ))

    it.effect("a stream is released when the first item fails at once, before the call returns", () =>
      Effect.gen(function*() {
        let released = false
        const items = Stream.make(1, 2, 3).pipe(Stream.ensuring(Effect.sync(() => {
          released = true
        })))
        const exit = yield* Effect.exit(Task.forEach(items, failAt(1)))
        assert.deepStrictEqual(errorOf(exit), new Boom({ id: 1 }))
        assert.isTrue(released)
      }).pipe(Effect.provide(TaskPool.layer())))

    it.effect("a generator whose finally throws fails the call with that defect, and the pool goes on", () =>
      runFor(
        1000,
        Effect.gen(function*() {
          function* items() {
            try {
              for (let i = 0; i < 100; i++) yield i
            } finally {
              throw new Error("finally threw")
            }
          }
          const exit = yield* Effect.exit(Task.forEach(items(), failAt(1)))
          assert.isTrue(exit._tag === "Failure")
          assert.deepStrictEqual(yield* Task.forEach([1, 2], slow), [10, 20])
        }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2 })))
      ))

    it.effect("an iterator that throws after items that suspended fails the call", () =>
      runFor(
        1000,
        Effect.gen(function*() {
          function* items() {
            yield 1
            yield 2
            throw new Error("iterator threw")
          }
          const exit = yield* Effect.exit(Task.forEach(items(), slow))
          assert.isTrue(exit._tag === "Failure" && String(exit.cause).includes("iterator threw"))
        }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1 })))
      ))

    it.effect("a payload that cannot cross, after items that suspended, fails the call", () =>
      runFor(
        1000,
        Effect.gen(function*() {
          const { Schema } = yield* Effect.promise(() => import("effect"))
          const portable = Task.make("slowPortable", (n: number) => Effect.sleep(5).pipe(Effect.as(n)), {
            module: import.meta.url,
            payload: Schema.Int,
            success: Schema.Number
          })
          const exit = yield* Effect.exit(Task.forEach([1, 2, 1.5, 3], portable))
          assert.instanceOf(errorOf(exit), TaskError.TaskPayloadError)
        }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1, threads: 0 })))
      ))

    it.effect("a stream that calls tasks itself, inside a task with maxWorkers 1, does not deadlock", () =>
      Effect.gen(function*() {
        const up = Task.make("up", (n: number) => Effect.sleep(5).pipe(Effect.as(n)))
        const outer = Task.make("outer", () =>
          Task.forEach(Stream.range(1, 4).pipe(Stream.mapEffect((n) => Effect.flatMap(up(n), Task.await))), slow))
        const result = yield* runFor(1000, Effect.flatMap(outer(), Task.await).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1 }))))
        assert.deepStrictEqual(result, [10, 20, 30, 40])
      }))

    it.effect.each(bothPools)("%s: an item or a stream that interrupts itself ends the call with that interruption", ([, pool]) =>
      runFor(
        1000,
        Effect.gen(function*() {
          const selfInterrupt = Task.make("selfInterrupt", (n: number) => n === 2 ? Effect.interrupt : Effect.succeed(n))
          const item = yield* Effect.exit(Task.forEach([1, 2, 3], selfInterrupt))
          assert.isTrue(item._tag === "Failure")
          const stream = yield* Effect.exit(Task.forEach(Stream.concat(Stream.make(1, 2), Stream.fromEffect(Effect.interrupt)), slow))
          assert.isTrue(stream._tag === "Failure")
        }).pipe(Effect.provide(pool))
      ))

    it.effect("interrupting the caller releases the stream before the call ends", () =>
      Effect.gen(function*() {
        const log: Array<string> = []
        const items = Stream.make(1, 2, 3, 4).pipe(Stream.ensuring(Effect.andThen(Effect.sleep(30), Effect.sync(() => log.push("released")))))
        const fiber = yield* Effect.forkChild(Task.forEach(items, slow).pipe(Effect.ensuring(Effect.sync(() => log.push("call ended")))))
        yield* TestClock.adjust(2)
        const interrupted = yield* Effect.forkChild(Fiber.interrupt(fiber))
        yield* TestClock.adjust(100)
        yield* Fiber.join(interrupted)
        assert.deepStrictEqual(log, ["released", "call ended"])
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2 }))))

    it.effect("a run woken from a wait goes on before a lane freed meanwhile starts the next item", () =>
      Effect.gen(function*() {
        const started: Array<number> = []
        const failing = Task.make("failing", () => Effect.fail(new Boom({ id: 0 })))
        const item = Task.make("item", (n: number) =>
          Effect.andThen(
            Effect.sync(() => started.push(n)),
            n === 0 ? Effect.andThen(Effect.sleep(5), Task.group(Effect.asVoid(failing()))) : Effect.sleep(200)
          ))
        const failedAt = yield* runFor(
          1000,
          Task.forEach([0, 1, 2], item).pipe(
            Effect.flip,
            Effect.andThen(Clock.currentTimeMillis),
            Effect.provide(TaskPool.layer({ maxWorkers: 1, blockWhenSaturated: true }))
          )
        )
        assert.strictEqual(failedAt, 5)
        assert.deepStrictEqual(started, [0])
      }))

    it.effect("two calls side by side take turns", () =>
      Effect.gen(function*() {
        const order: Array<string> = []
        const work = Task.make("work", (name: string) => Effect.sleep(2).pipe(Effect.andThen(Effect.sync(() => order.push(name)))))
        const names = (prefix: string) => Array.from({ length: 6 }, (_, i) => `${prefix}${i}`)
        const both = Effect.gen(function*() {
          const a = yield* Effect.forkChild(Task.forEach(names("a"), work, { discard: true }))
          const b = yield* Effect.forkChild(Task.forEach(names("b"), work, { discard: true }))
          yield* Fiber.join(a)
          yield* Fiber.join(b)
        })
        yield* runFor(1000, both.pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2 }))))
        // Neither waits for the other to finish: b's first item runs before a's last.
        assert.isBelow(order.indexOf("b0"), order.indexOf("a5"))
        assert.isBelow(order.indexOf("a2"), order.indexOf("b5"))
      }))
  })
})


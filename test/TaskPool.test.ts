import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Task, TaskPool } from "effect-lateral"
import { availableParallelism } from "node:os"
import { bothPools, Boom, concurrency, fiberTracker, settle } from "./helpers.ts"

const sleepTask = Task.make("sleep", (millis: number) => Effect.sleep(millis))

describe("TaskPool.layer", () => {
  it.effect("a call submits the task and returns at once; the caller goes on", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const log: Array<string> = []
      const waiter = Task.make("waiter", () => Effect.andThen(Deferred.await(gate), Effect.sync(() => log.push("task"))))
      yield* Effect.gen(function*() {
        const handle = yield* waiter()
        log.push("caller")
        assert.strictEqual(handle.task, "waiter")
        yield* Deferred.succeed(gate, undefined)
      }).pipe(Effect.provide(TaskPool.layer()))
      assert.deepStrictEqual(log, ["caller", "task"])
    }))

  it.effect("10 tasks of 200 ms with maxWorkers 10 finish in one task's time", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        for (let i = 0; i < 10; i++) yield* sleepTask(200)
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 10 })))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(199)
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust(1)
      yield* Fiber.join(fiber)
    }))

  it.effect("maxWorkers bounds the tasks running at once", () =>
    Effect.gen(function*() {
      const meter = concurrency()
      const measured = Task.make("measured", () => meter.around(Effect.sleep(100)))
      const program = Effect.gen(function*() {
        for (let i = 0; i < 10; i++) yield* measured()
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 3 })))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(300)
      assert.isUndefined(fiber.pollUnsafe(), "10 tasks on 3 lanes take 4 rounds")
      yield* TestClock.adjust(100)
      yield* Fiber.join(fiber)
      assert.strictEqual(meter.max(), 3)
    }))

  it.effect("maxWorkers defaults to availableParallelism() * 5", () =>
    Effect.gen(function*() {
      const pool = yield* TaskPool.TaskPool
      assert.strictEqual(pool.maxWorkers, availableParallelism() * 5)
      assert.strictEqual(TaskPool.defaultMaxWorkers, availableParallelism() * 5)
      assert.strictEqual(pool.mode, "parallel")
    }).pipe(Effect.provide(TaskPool.layer())))

  it.effect("the scope waits for every task, including tasks submitted while it waits", () =>
    Effect.gen(function*() {
      const finished: Array<string> = []
      const leaf = Task.make("leaf", (name: string) => Effect.sleep(50).pipe(Effect.andThen(Effect.sync(() => finished.push(name)))))
      const spawner = Task.make("spawner", () =>
        Effect.gen(function*() {
          yield* Effect.sleep(100)
          // submitted after the program body is done, while the scope waits
          yield* leaf("late child")
        }))
      const program = Effect.gen(function*() {
        yield* leaf("first")
        yield* spawner()
      }).pipe(Effect.provide(TaskPool.layer()))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(100)
      assert.deepStrictEqual(finished, ["first"])
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust(50)
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(finished, ["first", "late child"])
    }))

  it.effect("join is a barrier between two phases", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const step = Task.make("step", (phase: string, millis: number) =>
        Effect.sleep(millis).pipe(Effect.andThen(Effect.sync(() => log.push(phase)))))
      const program = Effect.gen(function*() {
        for (const millis of [30, 10, 20]) yield* step("download", millis)
        yield* TaskPool.join
        log.push("barrier")
        for (const millis of [5, 1]) yield* step("index", millis)
      }).pipe(Effect.provide(TaskPool.layer()))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(40)
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(log, ["download", "download", "download", "barrier", "index", "index"])
    }))

  it.effect("join waits for the descendants of the tasks submitted before it, not for later tasks", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const child = Task.make("child", () => Effect.sleep(20).pipe(Effect.andThen(Effect.sync(() => log.push("child")))))
      const parent = Task.make("parent", () => Effect.asVoid(child()))
      const late = Task.make("late", () => Effect.sleep(1000).pipe(Effect.andThen(Effect.sync(() => log.push("late")))))
      const joiner = Effect.gen(function*() {
        yield* TaskPool.join
        log.push("joined")
      })
      const program = Effect.gen(function*() {
        yield* parent()
        const joined = yield* Effect.forkChild(joiner, { startImmediately: true })
        yield* late()
        yield* Fiber.join(joined)
      }).pipe(Effect.provide(TaskPool.layer()))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(20)
      yield* settle
      assert.deepStrictEqual(log, ["child", "joined"])
      yield* TestClock.adjust(1000)
      yield* Fiber.join(fiber)
    }))

  it.effect("a second join waits for what the first one waits for", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const program = Effect.gen(function*() {
        yield* sleepTask(100)
        const first = yield* Effect.forkChild(Effect.andThen(TaskPool.join, Effect.sync(() => log.push("join 1"))), { startImmediately: true })
        const second = yield* Effect.forkChild(Effect.andThen(TaskPool.join, Effect.sync(() => log.push("join 2"))), { startImmediately: true })
        yield* Fiber.join(first)
        yield* Fiber.join(second)
      }).pipe(Effect.provide(TaskPool.layer()))
      const fiber = yield* Effect.forkChild(program)
      yield* settle
      assert.deepStrictEqual(log, [])
      yield* TestClock.adjust(100)
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(log.sort(), ["join 1", "join 2"])
    }))

  it.effect("join inside a task waits for that task's children", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const child = Task.make("child", (n: number) => Effect.sleep(n).pipe(Effect.andThen(Effect.sync(() => log.push(`child ${n}`)))))
      const parent = Task.make("parent", () =>
        Effect.gen(function*() {
          yield* child(20)
          yield* child(10)
          yield* TaskPool.join
          log.push("parent joined")
        }))
      const program = Effect.asVoid(parent()).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1 })))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(30)
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(log, ["child 20", "child 10", "parent joined"])
    }))

  it.effect("a task that fans out and waits completes with maxWorkers 1", () =>
    Effect.gen(function*() {
      const square = Task.make("square", (n: number) => Effect.sleep(10).pipe(Effect.as(n * n)))
      const sumOfSquares = Task.make("sumOfSquares", (n: number) =>
        Effect.gen(function*() {
          const group = yield* Task.group(
            Effect.gen(function*() {
              for (let i = 1; i <= n; i++) yield* square(i)
            }),
            { results: [square] }
          )
          const handle = yield* square(10)
          const hundred = yield* Task.await(handle)
          return group.results(square).reduce((a, b) => a + b, 0) + hundred
        }))
      const program = Effect.gen(function*() {
        const handle = yield* sumOfSquares(4)
        return yield* Task.await(handle)
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1 })))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(50)
      assert.strictEqual(yield* Fiber.join(fiber), 1 + 4 + 9 + 16 + 100)
    }))

  it.effect("blockWhenSaturated makes a submit wait for a free lane", () =>
    Effect.gen(function*() {
      const gates = yield* Effect.forEach([0, 1, 2], () => Deferred.make<void>())
      const submitted: Array<number> = []
      const gated = Task.make("gated", (i: number) => Deferred.await(gates[i]!))
      const program = Effect.gen(function*() {
        for (const i of [0, 1, 2]) {
          yield* gated(i)
          submitted.push(i)
        }
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2, blockWhenSaturated: true })))
      const fiber = yield* Effect.forkChild(program)
      yield* settle
      assert.deepStrictEqual(submitted, [0, 1], "the third submit waits: both lanes are busy")
      yield* Deferred.succeed(gates[0]!, undefined)
      yield* settle
      assert.deepStrictEqual(submitted, [0, 1, 2])
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* Deferred.succeed(gates[2]!, undefined)
      yield* Fiber.join(fiber)
    }))

  it.effect("a submit blocked on a full pool raises the pool's failure instead of waiting forever", () =>
    Effect.gen(function*() {
      const failLater = Task.make("failLater", () => Effect.sleep(50).pipe(Effect.andThen(Effect.fail(new Boom({ id: 1 })))))
      const program = Effect.gen(function*() {
        yield* failLater()
        yield* sleepTask(10) // blocks: the only lane is busy
        return "not reached"
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1, blockWhenSaturated: true })))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(50)
      assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.fail(new Boom({ id: 1 })))
    }))

  it.effect("a wait cut short inside a task (a timeout around it) takes the lane back before going on", () =>
    Effect.gen(function*() {
      const meter = concurrency()
      const slow = Task.make("slow", () => meter.around(Effect.sleep(1000)))
      const impatient = Task.make("impatient", () =>
        Effect.gen(function*() {
          const handle = yield* slow()
          yield* Task.await(handle).pipe(Effect.timeoutOption(10))
          yield* meter.around(Effect.sleep(100)) // must not run beside `slow`: maxWorkers is 1
        }), { timeout: 2000 })
      const fiber = yield* Effect.forkChild(Effect.asVoid(impatient()).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1 }))))
      yield* TestClock.adjust(1200)
      yield* Fiber.join(fiber)
      assert.strictEqual(meter.max(), 1)
    }))

  it.effect("without blockWhenSaturated, submits queue and return at once", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const gated = Task.make("gated", () => Deferred.await(gate))
      yield* Effect.gen(function*() {
        for (let i = 0; i < 5; i++) yield* gated()
        const stats = yield* TaskPool.stats
        assert.strictEqual(stats.running, 2)
        assert.strictEqual(stats.queued, 3)
        yield* Deferred.succeed(gate, undefined)
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2 })))
    }))

  it.effect("a blocked submit inside a task gives its lane up, so maxWorkers 1 does not deadlock", () =>
    Effect.gen(function*() {
      const leaf = Task.make("leaf", (n: number) => Effect.sleep(10).pipe(Effect.as(n)))
      const producer = Task.make("producer", () =>
        Effect.gen(function*() {
          for (let i = 0; i < 3; i++) yield* leaf(i)
          return "produced"
        }))
      const program = Effect.flatMap(producer(), Task.await).pipe(
        Effect.provide(TaskPool.layer({ maxWorkers: 1, blockWhenSaturated: true }))
      )
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(100)
      assert.strictEqual(yield* Fiber.join(fiber), "produced")
    }))

  it.effect.each(bothPools)("%s: stats count what happened, in all and by task", ([, pool]) =>
    Effect.gen(function*() {
      const ok = Task.make("ok", () => Effect.void)
      const bad = Task.make("bad", () => Effect.fail(new Boom({ id: 1 })))
      const stats = yield* Effect.gen(function*() {
        for (let i = 0; i < 5; i++) yield* ok()
        yield* Effect.exit(Task.group(bad()))
        yield* TaskPool.join
        return yield* TaskPool.stats
      }).pipe(Effect.provide(pool))
      const none = { submitted: 0, succeeded: 0, failed: 0, interrupted: 0, running: 0, queued: 0 }
      assert.deepStrictEqual(stats, {
        submitted: 6,
        succeeded: 5,
        failed: 1,
        interrupted: 0,
        running: 0,
        queued: 0,
        threads: 0,
        byTask: { ok: { ...none, submitted: 5, succeeded: 5 }, bad: { ...none, submitted: 1, failed: 1 } }
      })
    }))

  it.effect("stats by task count the running and the queued", () =>
    Effect.gen(function*() {
      const slow = Task.make("slow", () => Effect.sleep(10))
      const quick = Task.make("quick", () => Effect.sleep(10))
      const fiber = yield* Effect.forkChild(Effect.gen(function*() {
        for (let i = 0; i < 3; i++) yield* slow()
        for (let i = 0; i < 2; i++) yield* quick()
        return yield* TaskPool.stats
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2 }))))
      yield* TestClock.adjust(100)
      const stats = yield* Fiber.join(fiber)
      assert.deepStrictEqual([stats.byTask.slow?.running, stats.byTask.slow?.queued, stats.byTask.quick?.queued], [2, 1, 2])
    }))

  it.effect.each(bothPools)("%s: onProgress reports the counters until the pool closes, ending on the totals", ([name, pool]) =>
    Effect.gen(function*() {
      const samples: Array<TaskPool.Progress> = []
      const program = Effect.gen(function*() {
        yield* TaskPool.onProgress("1 second", (sample) => Effect.sync(() => samples.push(sample)))
        // On 4 lanes: 4 tasks finish after 1 s, 4 more after 2 s.
        for (let i = 0; i < 8; i++) yield* sleepTask(1000)
      }).pipe(Effect.provide(pool))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1 second")
      if (name === "serial") yield* TestClock.adjust("20 seconds")
      yield* Fiber.join(fiber)
      const last = samples.at(-1)!
      assert.deepStrictEqual([last.submitted, last.finished, last.running], [8, 8, 0])
      if (name === "layer") {
        assert.strictEqual(samples[0]!.finished, 0)
        const midway = samples.find((sample) => sample.finished > 0 && sample.finished < 8)
        assert.isDefined(midway, "a sample while the second half ran")
        assert.isAbove(midway!.rate, 0)
        assert.isAbove(Duration.toMillis(midway!.elapsed), 0)
      }
    }))

  it.effect("progress is a stream that ends once the pool has closed", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const collector = yield* Effect.forkDetach(Stream.runCollect(TaskPool.progress("1 second")))
        for (let i = 0; i < 3; i++) yield* sleepTask(1500)
        return collector
      }).pipe(Effect.provide(TaskPool.layer()))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust("2 seconds")
      // The stream ended by itself, on the final counters.
      const samples = yield* Fiber.join(yield* Fiber.join(fiber))
      assert.strictEqual(samples.at(-1)!.finished, 3)
    }))

  it.effect("an inner pool shadows the outer one for its body", () =>
    Effect.gen(function*() {
      const modes: Array<string> = []
      const whichPool = Task.make("whichPool", () => TaskPool.TaskPool.useSync((pool) => modes.push(pool.mode)))
      yield* Effect.gen(function*() {
        yield* whichPool()
        yield* TaskPool.join
        yield* Effect.asVoid(whichPool()).pipe(Effect.provide(TaskPool.serial))
      }).pipe(Effect.provide(TaskPool.layer()))
      assert.deepStrictEqual(modes, ["parallel", "serial"])
    }))

  it.effect("a task submitted after the pool closed is a defect that names it", () =>
    Effect.gen(function*() {
      let captured: Effect.Effect<unknown, never, never> = Effect.void
      const noop = Task.make("noop", () => Effect.void)
      yield* Effect.gen(function*() {
        const context = yield* Effect.context<TaskPool.TaskPool>()
        captured = Effect.provideContext(noop(), context)
      }).pipe(Effect.provide(TaskPool.layer()))
      const exit = yield* Effect.exit(captured)
      assert.isTrue(Exit.isFailure(exit) && Cause.pretty(exit.cause).includes(`Task "noop" was submitted after its TaskPool closed`))
    }))
})

describe("failures", () => {
  const fail = Task.make("fail", (id: number) => Effect.fail(new Boom({ id })))
  const failLater = Task.make("failLater", (id: number) => Effect.sleep(10).pipe(Effect.andThen(Effect.fail(new Boom({ id })))))

  it.effect.each(bothPools)("%s: the first failure surfaces with its own typed error", ([, pool]) =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        yield* failLater(1)
        return "body done"
      }).pipe(
        Effect.provide(pool),
        Effect.catchTag("Boom", (error) => Effect.succeed(`caught Boom ${error.id}`))
      )
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(10)
      assert.strictEqual(yield* Fiber.join(fiber), "caught Boom 1")
    }))

  it.effect("serial: a failure surfaces at the call", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const exit = yield* Effect.gen(function*() {
        yield* fail(7).pipe(Effect.tapError(() => Effect.sync(() => log.push("failed at the call"))))
        log.push("after the call")
      }).pipe(Effect.provide(TaskPool.serial), Effect.exit)
      assert.deepStrictEqual(log, ["failed at the call"])
      assert.deepStrictEqual(exit, Exit.fail(new Boom({ id: 7 })))
    }))

  it.effect("the first failure interrupts every other task of the pool", () =>
    Effect.gen(function*() {
      const tracker = fiberTracker()
      const interrupted: Array<number> = []
      const long = Task.make("long", (n: number) =>
        Effect.andThen(tracker.track, Effect.never).pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted.push(n)))))
      const program = Effect.gen(function*() {
        yield* long(1)
        yield* long(2)
        yield* failLater(3)
        yield* long(4) // queued behind the two lanes: dropped, never started
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 3 })))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(10)
      const exit = yield* Fiber.await(fiber)
      assert.deepStrictEqual(exit, Exit.fail(new Boom({ id: 3 })))
      assert.deepStrictEqual(interrupted.sort(), [1, 2])
      assert.isTrue(tracker.allDone())
    }))

  it.effect("a task waiting on another task is interrupted cleanly when the pool fails", () =>
    Effect.gen(function*() {
      const tracker = fiberTracker()
      const forever = Task.make("forever", () => Effect.andThen(tracker.track, Effect.never))
      const waiter = Task.make("waiter", () => Effect.andThen(tracker.track, Effect.flatMap(forever(), Task.await)))
      const program = Effect.gen(function*() {
        yield* waiter()
        yield* failLater(8)
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2 })))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(10)
      assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.fail(new Boom({ id: 8 })))
      assert.strictEqual(tracker.count(), 2)
      assert.isTrue(tracker.allDone())
    }))

  it.effect("after a failure, the next submit raises it", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const ok = Task.make("ok", () => Effect.sync(() => log.push("ok ran")))
      const exit = yield* Effect.gen(function*() {
        yield* fail(1) // starts at once and fails synchronously
        log.push("after fail")
        yield* ok()
        log.push("after ok")
      }).pipe(Effect.provide(TaskPool.layer()), Effect.exit)
      assert.deepStrictEqual(exit, Exit.fail(new Boom({ id: 1 })))
      assert.deepStrictEqual(log, ["after fail"])
    }))

  it.effect("after a failure, join raises it", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const program = Effect.gen(function*() {
        yield* failLater(2)
        yield* TaskPool.join.pipe(Effect.tapError(() => Effect.sync(() => log.push("join raised"))))
        log.push("after join")
      }).pipe(Effect.provide(TaskPool.layer()))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(10)
      assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.fail(new Boom({ id: 2 })))
      assert.deepStrictEqual(log, ["join raised"])
    }))

  it.effect("Task.await on a task interrupted by another's failure raises that failure", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const handle = yield* sleepTask(1000)
        yield* failLater(5)
        return yield* Task.await(handle)
      }).pipe(Effect.provide(TaskPool.layer()))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(10)
      assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.fail(new Boom({ id: 5 })))
    }))

  it.effect.each(bothPools)("%s: Task.await returns the value, or the task's own typed error", ([, pool]) =>
    Effect.gen(function*() {
      const double = Task.make("double", (n: number) => Effect.succeed(n * 2))
      const value = yield* Effect.flatMap(double(21), Task.await).pipe(Effect.provide(pool))
      const error = yield* Effect.flatMap(fail(9), Task.await).pipe(Effect.provide(pool), Effect.flip)
      assert.strictEqual(value, 42)
      assert.deepStrictEqual(error, new Boom({ id: 9 }))
    }))

  it.effect("a defect keeps its message", () =>
    Effect.gen(function*() {
      const crash = Task.make("crash", () => Effect.sync(() => {
        throw new Error("kaput")
      }))
      const exit = yield* Effect.asVoid(crash()).pipe(Effect.provide(TaskPool.layer()), Effect.exit)
      assert.isTrue(Exit.isFailure(exit))
      const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      assert.instanceOf(defect, Error)
      assert.strictEqual((defect as Error).message, "kaput")
    }))
})

describe("no fiber is left running after the scope closes", () => {
  const program = (tracker: ReturnType<typeof fiberTracker>, failing: boolean) => {
    const child = Task.make("child", () => Effect.andThen(tracker.track, Effect.sleep(100)))
    const parent = Task.make("parent", () =>
      Effect.gen(function*() {
        yield* tracker.track
        yield* child()
        yield* child()
        yield* Effect.sleep(50)
        if (failing) return yield* new Boom({ id: 0 })
      }))
    return Effect.gen(function*() {
      for (let i = 0; i < 3; i++) yield* parent()
    }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 4 })))
  }

  it.effect("when it closes normally", () =>
    Effect.gen(function*() {
      const tracker = fiberTracker()
      const fiber = yield* Effect.forkChild(program(tracker, false))
      yield* TestClock.adjust(1000)
      yield* Fiber.join(fiber)
      assert.strictEqual(tracker.count(), 9)
      assert.isTrue(tracker.allDone())
    }))

  it.effect("when a task fails", () =>
    Effect.gen(function*() {
      const tracker = fiberTracker()
      const fiber = yield* Effect.forkChild(program(tracker, true))
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.fail(new Boom({ id: 0 })))
      assert.isTrue(tracker.allDone())
    }))

  it.effect("when the program is interrupted", () =>
    Effect.gen(function*() {
      const tracker = fiberTracker()
      const fiber = yield* Effect.forkChild(program(tracker, false))
      yield* TestClock.adjust(20)
      assert.isFalse(tracker.allDone())
      yield* Fiber.interrupt(fiber)
      assert.isTrue(tracker.allDone())
    }))

  it.effect("when the program is interrupted during the final wait", () =>
    Effect.gen(function*() {
      const tracker = fiberTracker()
      const forever = Task.make("forever", () => Effect.andThen(tracker.track, Effect.never))
      const fiber = yield* Effect.forkChild(Effect.asVoid(forever()).pipe(Effect.provide(TaskPool.layer())))
      yield* settle
      assert.isUndefined(fiber.pollUnsafe(), "the scope waits for the task")
      yield* Fiber.interrupt(fiber)
      assert.isTrue(tracker.allDone())
    }))
})

describe("timeout", () => {
  it.effect("bounds the final wait: the tasks are interrupted and the scope fails with PoolTimeoutError", () =>
    Effect.gen(function*() {
      const interrupted: Array<string> = []
      const slow = Task.make("slow", () => Effect.sleep("1 hour").pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted.push("slow")))))
      const program = Effect.asVoid(slow()).pipe(Effect.provide(TaskPool.layer({ timeout: "1 second" })))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : Option.none()
      assert.isTrue(Option.isSome(error) && error.value._tag === "PoolTimeoutError")
      if (Option.isSome(error)) {
        assert.strictEqual(error.value.message, "The task pool timed out after 1s with 1 task(s) unfinished; they were interrupted")
      }
      assert.deepStrictEqual(interrupted, ["slow"])
    }))

  it.effect("does not fire when the tasks finish in time", () =>
    Effect.gen(function*() {
      const program = Effect.asVoid(sleepTask(500)).pipe(Effect.provide(TaskPool.layer({ timeout: "1 second" })))
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust(500)
      yield* Fiber.join(fiber)
    }))
})

describe("TaskPool.layerConfig", () => {
  const withEnv = (env: Record<string, string>) => <E>(layer: Layer.Layer<TaskPool.TaskPool, E>) =>
    Layer.provide(layer, Layer.succeed(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env })))
  const describePool = TaskPool.TaskPool.useSync((pool) => `${pool.mode}/${pool.maxWorkers}`)

  it.effect("defaults to the parallel pool", () =>
    Effect.gen(function*() {
      const pool = yield* describePool.pipe(Effect.provide(withEnv({})(TaskPool.layerConfig())))
      assert.strictEqual(pool, `parallel/${availableParallelism() * 5}`)
    }))

  it.effect.each(["false", "FALSE", "no", "Off", "0"])("LATERAL_ENABLED=%s selects the serial pool", (value) =>
    Effect.gen(function*() {
      const pool = yield* describePool.pipe(Effect.provide(withEnv({ LATERAL_ENABLED: value })(TaskPool.layerConfig())))
      assert.strictEqual(pool, "serial/1")
    }))

  it.effect("LATERAL_WORKERS sets maxWorkers; an explicit option wins", () =>
    Effect.gen(function*() {
      const fromEnv = yield* describePool.pipe(Effect.provide(withEnv({ LATERAL_WORKERS: "3" })(TaskPool.layerConfig())))
      const explicit = yield* describePool.pipe(
        Effect.provide(withEnv({ LATERAL_WORKERS: "3" })(TaskPool.layerConfig({ maxWorkers: 7 })))
      )
      assert.deepStrictEqual([fromEnv, explicit], ["parallel/3", "parallel/7"])
    }))

  it.effect.each(["2 seconds", "2"])("LATERAL_TIMEOUT=%s bounds the final wait", (value) =>
    Effect.gen(function*() {
      const program = Effect.asVoid(sleepTask(60_000)).pipe(
        Effect.provide(withEnv({ LATERAL_TIMEOUT: value })(TaskPool.layerConfig()))
      )
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit) && Cause.pretty(exit.cause).includes("PoolTimeoutError"))
    }))

  it.effect("LATERAL_BLOCK_WHEN_SATURATED makes submits wait", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const gated = Task.make("gated", () => Deferred.await(gate))
      let submitted = 0
      const program = Effect.gen(function*() {
        for (let i = 0; i < 3; i++) {
          yield* gated()
          submitted++
        }
      }).pipe(Effect.provide(withEnv({ LATERAL_WORKERS: "1", LATERAL_BLOCK_WHEN_SATURATED: "yes" })(TaskPool.layerConfig())))
      const fiber = yield* Effect.forkChild(program)
      yield* settle
      assert.strictEqual(submitted, 1)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(fiber)
      assert.strictEqual(submitted, 3)
    }))

  it.effect.each([
    ["LATERAL_WORKERS", "lots", "LATERAL_WORKERS=\"lots\" is not a positive integer"],
    ["LATERAL_WORKERS", "0", "LATERAL_WORKERS=\"0\" is not a positive integer"],
    ["LATERAL_WORKERS", "2.5", "LATERAL_WORKERS=\"2.5\" is not a positive integer"],
    ["LATERAL_ENABLED", "maybe", "LATERAL_ENABLED=\"maybe\" is not a boolean"],
    ["LATERAL_TIMEOUT", "soon", "LATERAL_TIMEOUT=\"soon\" is not a non-negative duration"],
    ["LATERAL_TIMEOUT", "-5 seconds", "LATERAL_TIMEOUT=\"-5 seconds\" is not a non-negative duration"],
    ["LATERAL_TIMEOUT", "-1", "LATERAL_TIMEOUT=\"-1\" is not a non-negative duration"],
    ["LATERAL_THREADS", "-1", "LATERAL_THREADS=\"-1\" is not a non-negative integer"],
    ["LATERAL_BLOCK_WHEN_SATURATED", "sometimes", "LATERAL_BLOCK_WHEN_SATURATED=\"sometimes\" is not a boolean"]
  ] as const)("%s=%s fails with a ConfigError naming the variable and the value; nothing runs", ([name, value, message]) =>
    Effect.gen(function*() {
      let ran = false
      const task = Task.make("task", () => Effect.sync(() => (ran = true)))
      const error = yield* Effect.asVoid(task()).pipe(
        Effect.provide(withEnv({ [name]: value })(TaskPool.layerConfig())),
        Effect.flip
      )
      assert.strictEqual(error._tag, "ConfigError")
      assert.include(error.message, message)
      assert.isFalse(ran)
    }))
})

describe("options in code", () => {
  const defectOf = (layer: Layer.Layer<TaskPool.TaskPool, unknown>) =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.provide(Effect.void, layer))
      assert.isTrue(Exit.isFailure(exit))
      return Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
    })

  it.effect.each([
    [{ maxWorkers: 0 }, "TaskPool.layer: maxWorkers must be a positive integer, got 0"],
    [{ maxWorkers: 2.5 }, "TaskPool.layer: maxWorkers must be a positive integer, got 2.5"],
    [{ threads: -1 }, "TaskPool.layer: threads must be a non-negative integer, got -1"],
    [{ timeout: -1 }, "TaskPool.layer: timeout must be a non-negative duration such as \"30 seconds\", got -1"],
    [{ timeout: NaN }, "TaskPool.layer: timeout must be a non-negative duration such as \"30 seconds\", got NaN"],
    [{ timeout: "-5 seconds" }, "TaskPool.layer: timeout must be a non-negative duration such as \"30 seconds\", got \"-5 seconds\""],
    [{ resourceLimits: { maxOldGenerationSizeMb: 2 } }, "TaskPool.layer: resourceLimits must be"]
  ] as const)("%o is refused with a defect naming the option and the value", ([options, message]) =>
    Effect.map(defectOf(TaskPool.layer(options as TaskPool.Options)), (pretty) => assert.include(pretty, message)))

  it("Task.make refuses a timeout that is not a non-negative duration, naming the task", () => {
    assert.throws(() => Task.make("negative", () => Effect.void, { timeout: -1 }), `Task.make("negative"): timeout must be`)
    assert.throws(() => Task.make("nan", () => Effect.void, { timeout: NaN }), `Task.make("nan"): timeout must be`)
  })

  it.effect("lanes cost nothing until used: a pool of a hundred million lanes builds at once", () =>
    Effect.gen(function*() {
      const one = Task.make("one", () => Effect.succeed(1))
      const value = yield* Effect.flatMap(one(), Task.await).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 100_000_000 })))
      assert.strictEqual(value, 1)
    }))
})

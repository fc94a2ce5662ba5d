/**
 * Regression tests for programs that used to hang or misbehave under the
 * lane model of 0.1.0 (issue 7). Each one settles on the test clock, so a
 * deadlock shows as a fiber that is still running after the clock moved.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Task, TaskError, TaskPool, WorkerLocal } from "effect-lateral"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Boom, errorOf, settle } from "./helpers.ts"

/** Forks `program` detached (a deadlocked fiber must not hold up the test), moves the clock, and returns its exit if it settled. */
const settledAfter = <A, E>(millis: number, program: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkDetach(program)
    yield* settle
    yield* TestClock.adjust(millis)
    yield* settle
    return fiber.pollUnsafe()
  })

describe("no deadlock when waits are interrupted", () => {
  it.effect("interrupting a task that waits in a group on a task that waits in a group settles at once", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const leaf = Task.make("leaf", () => Effect.sleep("1 hour").pipe(Effect.onInterrupt(() => Effect.sync(() => log.push("leaf")))))
      const inner = Task.make("inner", () => Task.group(Effect.asVoid(leaf())).pipe(Effect.onInterrupt(() => Effect.sync(() => log.push("inner")))))
      const outer = Task.make("outer", () => Task.group(Effect.asVoid(inner())).pipe(Effect.onInterrupt(() => Effect.sync(() => log.push("outer")))))
      const exit = yield* settledAfter(
        100,
        Effect.flatMap(outer(), Task.await).pipe(Effect.timeout("100 millis"), Effect.provide(TaskPool.layer({ maxWorkers: 1 })))
      )
      assert.isDefined(exit, "the program settled")
      assert.strictEqual(errorOf(exit!)?._tag, "TimeoutError")
      assert.deepStrictEqual(log.sort(), ["inner", "leaf", "outer"], "every finalizer ran")
    }))

  it.effect("a task's own timeout holds while it waits for a task that holds the only lane", () =>
    Effect.gen(function*() {
      const slow = Task.make("slow", () => Effect.sleep("3 seconds"))
      const outer = Task.make("outer", () => Effect.flatMap(slow(), Task.await), { timeout: "100 millis" })
      const exit = yield* settledAfter(100, Effect.flatMap(outer(), Task.await).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1 }))))
      assert.isDefined(exit, "settled at the task's timeout, not after the 3 s task")
      assert.instanceOf(errorOf(exit!), TaskError.TaskTimeoutError)
    }))

  it.effect("a task's own timeout holds while it waits in a group on a task that waits in a group", () =>
    Effect.gen(function*() {
      const leaf = Task.make("leaf", () => Effect.sleep("1 second"))
      const middle = Task.make("middle", () => Task.group(Effect.asVoid(leaf())))
      const outer = Task.make("outer", () => Task.group(Effect.asVoid(middle())), { timeout: "100 millis" })
      const exit = yield* settledAfter(100, Effect.flatMap(outer(), Task.await).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1 }))))
      assert.isDefined(exit)
      assert.instanceOf(errorOf(exit!), TaskError.TaskTimeoutError)
      assert.strictEqual((errorOf(exit!) as TaskError.TaskTimeoutError).task, "outer")
    }))

  it.effect("a failing group fails at once, though it must interrupt a task whose child runs", () =>
    Effect.gen(function*() {
      const grandchild = Task.make("grandchild", () => Effect.sleep("1 hour"))
      const waiting = Task.make("waiting", () => Task.group(Effect.asVoid(grandchild())))
      const failing = Task.make("failing", () => Effect.sleep(10).pipe(Effect.andThen(Effect.fail(new Boom({ id: 3 })))))
      const exit = yield* settledAfter(
        10,
        Task.group(Effect.andThen(failing(), waiting())).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2 })))
      )
      assert.isDefined(exit, "the group failed when its task did")
      assert.deepStrictEqual(errorOf(exit!), new Boom({ id: 3 }))
    }))

  it.effect("a WorkerLocal acquisition is interrupted by the task's timeout", () =>
    Effect.gen(function*() {
      let released = 0
      const slowResource = WorkerLocal.make(
        Effect.acquireRelease(Effect.succeed("half-open"), () => Effect.sync(() => released++)).pipe(
          Effect.andThen(Effect.sleep("3 seconds")),
          Effect.as("connection")
        )
      )
      const user = Task.make("user", () => slowResource, { timeout: "100 millis" })
      const exit = yield* settledAfter(
        100,
        Effect.flatMap(user(), Task.await).pipe(Effect.timeout("200 millis"), Effect.provide(TaskPool.layer()))
      )
      assert.isDefined(exit, "settled at the task's timeout")
      assert.instanceOf(errorOf(exit!), TaskError.TaskTimeoutError)
      assert.strictEqual(released, 1, "what the interrupted acquisition had acquired was released")
    }))
})

describe("under NodeRuntime.runMain", () => {
  it.live("SIGINT ends a program whose tasks wait in nested groups: every finalizer runs, the process exits", () =>
    Effect.callback<{ readonly code: number | null; readonly signal: string | null; readonly stdout: string; readonly millis: number }>(
      (resume) => {
        const script = fileURLToPath(new URL("./fixtures/interrupted.ts", import.meta.url))
        let started = 0
        const child = execFile(process.execPath, [script], { timeout: 15_000, killSignal: "SIGKILL" }, (error, stdout) =>
          resume(Effect.succeed({
            code: child.exitCode,
            signal: error && "signal" in error ? (error.signal as string | null) : null,
            stdout,
            millis: Date.now() - started
          })))
        child.stdout!.on("data", (chunk: Buffer) => {
          if (started === 0 && chunk.toString().includes("leaf started")) {
            started = Date.now()
            child.kill("SIGINT")
          }
        })
        return Effect.sync(() => child.kill("SIGKILL"))
      }
    ).pipe(Effect.map((result) => {
      assert.notStrictEqual(result.signal, "SIGKILL", "the process ended on its own, not by the 15 s kill")
      assert.include(result.stdout, "leaf finalizer ran")
      assert.include(result.stdout, "inner finalizer ran")
      assert.include(result.stdout, "outer finalizer ran")
      assert.isBelow(result.millis, 5_000, "well before the sleeper's hour")
    })), 30_000)
})

describe("join", () => {
  it.effect("counts a task submitted by a fiber that outlived its task, once", () =>
    Effect.gen(function*() {
      const child = Task.make("child", () => Effect.sleep(100))
      const parent = Task.make("parent", () => Effect.asVoid(Effect.forkDetach(Effect.andThen(Effect.sleep(10), child()))))
      const other = Task.make("other", () => Effect.sleep(500))
      const fiber = yield* Effect.forkChild(
        Effect.gen(function*() {
          yield* parent()
          yield* Effect.sleep(20) // the detached fiber has submitted `child`
          yield* other()
          yield* TaskPool.join
          return yield* TaskPool.stats
        }).pipe(Effect.provide(TaskPool.layer()))
      )
      yield* TestClock.adjust(1000)
      const stats = yield* Fiber.join(fiber)
      assert.strictEqual(stats.running, 0, "join waited for every task")
      assert.strictEqual(stats.succeeded, 3)
    }))
})

describe("one failure contract under both pools", () => {
  const lookup = Task.make("lookup", (id: number): Effect.Effect<string, Boom> =>
    id === 3 ? Effect.fail(new Boom({ id })) : Effect.succeed(`item ${id}`))

  it.effect.each([["layer", TaskPool.layer()], ["serial", TaskPool.serial]] as const)(
    "%s: handling the failure at Task.await does not un-fail the pool: its close raises it",
    ([, pool]) =>
      Effect.gen(function*() {
        const log: Array<string> = []
        const exit = yield* Effect.flatMap(lookup(3), Task.await).pipe(
          Effect.catchTag("Boom", () => Effect.sync(() => log.push("handled at await"))),
          Effect.provide(pool),
          Effect.exit
        )
        assert.deepStrictEqual(log, ["handled at await"])
        // The types cannot know it (the error was handled at the await), but the close raises the failure again.
        assert.deepStrictEqual(exit as Exit.Exit<unknown, unknown>, Exit.fail(new Boom({ id: 3 })))
      })
  )

  it.effect.each([["layer", TaskPool.layer()], ["serial", TaskPool.serial]] as const)(
    "%s: after a failure, the next submit and join raise it again",
    ([, pool]) =>
      Effect.gen(function*() {
        const raised: Array<string> = []
        // Typed as unable to fail once the first failure is handled: the pool raises it again all the same.
        const catchBoom = (where: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
          Effect.catchCause(effect, (cause) =>
            errorOf(Exit.failCause(cause)) instanceof Boom ? Effect.sync(() => raised.push(where)) : Effect.failCause(cause))
        yield* Effect.gen(function*() {
          yield* Effect.flatMap(lookup(3), Task.await).pipe(catchBoom("await"))
          yield* lookup(1).pipe(catchBoom("submit"))
          yield* TaskPool.join.pipe(catchBoom("join"))
        }).pipe(Effect.provide(pool), catchBoom("close"))
        assert.deepStrictEqual(raised, ["await", "submit", "join", "close"])
      })
  )

  it.effect.each([["layer", TaskPool.layer()], ["serial", TaskPool.serial]] as const)(
    "%s: a failure handled around its Task.group leaves the pool running",
    ([, pool]) =>
      Effect.gen(function*() {
        const result = yield* Effect.gen(function*() {
          const handled = yield* Task.group(Effect.asVoid(lookup(3))).pipe(
            Effect.as("no failure"),
            Effect.catchTag("Boom", (error) => Effect.succeed(`group failed with ${error.id}`))
          )
          return [handled, yield* Effect.flatMap(lookup(1), Task.await)]
        }).pipe(Effect.provide(pool))
        assert.deepStrictEqual(result, ["group failed with 3", "item 1"])
      })
  )

  it.effect.each([["layer", TaskPool.layer()], ["serial", TaskPool.serial]] as const)(
    "%s: an interruption the program causes is not a failure",
    ([, pool]) =>
      Effect.gen(function*() {
        const gate = yield* Deferred.make<void>()
        const waits = Task.make("waits", () => Deferred.await(gate))
        const fiber = yield* Effect.gen(function*() {
          // Serial: the task runs inline, and the timeout interrupts it there. Parallel: the wait is cut short.
          yield* Effect.flatMap(waits(), Task.await).pipe(Effect.timeoutOption("10 millis"))
          yield* Deferred.succeed(gate, undefined)
          return "went on"
        }).pipe(Effect.provide(pool), Effect.forkChild)
        yield* TestClock.adjust(10)
        assert.strictEqual(yield* Fiber.join(fiber), "went on")
      })
  )
})

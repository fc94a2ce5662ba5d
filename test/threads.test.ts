import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Exit, Fiber, Layer, Schema } from "effect"
import { Task, TaskError, TaskPool } from "effect-lateral"
import { execFile } from "node:child_process"
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { threadId } from "node:worker_threads"
import * as Portable from "./fixtures/portable.ts"
import { errorOf } from "./helpers.ts"

const onThreads = TaskPool.layer({ maxWorkers: 4, threads: 2 })

/** Where each kind of pool runs portable tasks. */
const pools = [
  ["worker threads", onThreads],
  ["threads: 0", TaskPool.layer({ maxWorkers: 4, threads: 0 })],
  ["serial", TaskPool.serial]
] as const

const awaitAll = <A, E, R>(handles: Effect.Effect<ReadonlyArray<Task.Handle<A, E>>, E, R>) =>
  Effect.flatMap(handles, (all) => Effect.forEach(all, Task.await))

describe("portable tasks", () => {
  it.live("run on the pool's worker threads, the call site unchanged", () =>
    Effect.gen(function*() {
      const results = yield* awaitAll(Effect.forEach([1, 2, 3, 4], (n) => Portable.double(n))).pipe(
        Effect.provide(TaskPool.layer({ maxWorkers: 4, threads: 2, warmUp: true }))
      )
      assert.deepStrictEqual(results.map((result) => result.value), [2, 4, 6, 8])
      const threads = new Set(results.map((result) => result.thread))
      assert.strictEqual(threads.size, 2, "spread over both threads, least loaded first")
      assert.isFalse(threads.has(threadId))
    }))

  it.live.each([["threads: 0", TaskPool.layer({ threads: 0 })], ["serial", TaskPool.serial]] as const)(
    "run inline under %s",
    ([, pool]) =>
      Effect.gen(function*() {
        const result = yield* Effect.flatMap(Portable.double(21), Task.await).pipe(Effect.provide(pool))
        assert.deepStrictEqual(result, { value: 42, thread: threadId })
      })
  )

  it.live.each(pools)("%s: Effect.catchTag handles a task's typed error", ([, pool]) =>
    Effect.gen(function*() {
      const caught = yield* Effect.flatMap(Portable.find(3), Task.await).pipe(
        Effect.provide(pool),
        Effect.catchTag("NotFound", (error) => Effect.succeed(`not found: ${error.id}`))
      )
      assert.strictEqual(caught, "not found: 3")
      const error = yield* Effect.flatMap(Portable.find(5), Task.await).pipe(Effect.provide(pool), Effect.flip)
      assert.instanceOf(error, Portable.NotFound)
    }))

  it.live("a defect keeps its message and stack across the thread", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.flatMap(Portable.explode("kaboom"), Task.await).pipe(Effect.provide(onThreads), Effect.exit)
      assert.isTrue(Exit.isFailure(exit))
      const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) as Error : undefined
      assert.strictEqual(defect?.name, "RangeError")
      assert.strictEqual(defect?.message, "kaboom")
      assert.include(defect?.stack, "fixtures/portable.ts")
    }))

  it.live.each(pools)("%s: a payload its schema rejects fails the call with TaskPayloadError", ([, pool]) =>
    Effect.gen(function*() {
      const error = yield* Effect.asVoid(Portable.double("two" as unknown as number)).pipe(Effect.provide(pool), Effect.flip)
      assert.instanceOf(error, TaskError.TaskPayloadError)
      assert.strictEqual((error as TaskError.TaskPayloadError).task, "double")
      assert.include(error.message, `Task "double" got a payload that cannot be sent to a worker thread`)
    }))

  it.live("a payload its schema accepts but a thread cannot copy fails that task alone, with TaskPayloadError", () =>
    Effect.gen(function*() {
      const [copyable, unclonable] = yield* Effect.gen(function*() {
        const copyable = yield* Portable.describeValue({ n: 1 }) // same batch as the next one
        const unclonable = yield* Task.group(Effect.asVoid(Portable.describeValue({ call: () => 1 }))).pipe(Effect.flip)
        return [yield* Task.await(copyable), unclonable] as const
      }).pipe(Effect.provide(onThreads))
      assert.strictEqual(copyable, "object")
      assert.instanceOf(unclonable, TaskError.TaskPayloadError)
      assert.include(unclonable.message, `Task "describeValue" got a payload that cannot be sent to a worker thread`)
    }))

  it.live("a result a thread cannot copy back fails that task with a defect; the thread goes on", () =>
    Effect.gen(function*() {
      const [exit, after] = yield* Effect.gen(function*() {
        const exit = yield* Effect.exit(Task.group(Effect.asVoid(Portable.unclonableResult(1))))
        return [exit, yield* Effect.flatMap(Portable.double(4), Task.await)] as const
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1, threads: 1 })))
      assert.isTrue(Exit.isFailure(exit) && Cause.pretty(exit.cause).includes("cannot be copied back from its worker thread"))
      assert.strictEqual(after.value, 8)
    }))

  it.live("a task interrupted before it left for its thread never runs there", () =>
    Effect.gen(function*() {
      const marker = join(mkdtempSync(join(tmpdir(), "lateral-touch-")), "ran")
      yield* Effect.gen(function*() {
        yield* Effect.flatMap(Portable.double(1), Task.await) // the thread is up
        // The body fails in the same tick: the group interrupts the task before its batch is sent.
        yield* Effect.exit(Task.group(Effect.andThen(Portable.touch(marker), Effect.fail("stop"))))
        yield* Effect.sleep(200)
      }).pipe(Effect.provide(onThreads))
      assert.isFalse(existsSync(marker), "the interrupted task did not run")
    }))

  it.live.each(pools)("%s: the task's layer is built once per lane, on the lane's thread", ([, pool]) =>
    Effect.gen(function*() {
      const greetings = yield* awaitAll(Effect.forEach(["a", "b", "c", "d", "e", "f", "g", "h"], (name) => Portable.greet(name)))
        .pipe(Effect.provide(pool))
      assert.deepStrictEqual(greetings.map((greeting) => greeting.text), ["a", "b", "c", "d", "e", "f", "g", "h"].map((name) => `hello ${name}`))
      // One service per (thread, lane): never more than the lanes.
      const services = new Set(greetings.map((greeting) => `${greeting.thread}/${greeting.greeter}`))
      assert.isAtMost(services.size, pool === TaskPool.serial ? 1 : 4)
    }))

  it.live("WorkerLocal works inside tasks on worker threads: an instance lives on its thread and serves the next task there", () =>
    Effect.gen(function*() {
      const counts = yield* Effect.gen(function*() {
        const first = yield* awaitAll(Effect.forEach([0, 1, 2, 3], (i) => Portable.countUses(i)))
        const second = yield* awaitAll(Effect.forEach([0, 1, 2, 3], (i) => Portable.countUses(i)))
        return [...first, ...second]
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 4, threads: 2, warmUp: true })))
      assert.isFalse(counts.some((count) => count.thread === threadId))
      // These tasks finish without waiting, so each thread needs one instance, which every task there used in turn.
      const byThread = Map.groupBy(counts, (count) => count.thread)
      assert.strictEqual(byThread.size, 2)
      for (const [, seen] of byThread) {
        assert.deepStrictEqual(seen.map((count) => count.count).sort((a, b) => a - b), seen.map((_, i) => i + 1))
      }
    }))
})

describe("tasks submitted from a worker thread", () => {
  it.live("go through the same pool: groups, handles and results", () =>
    Effect.gen(function*() {
      const [sum, stats] = yield* Effect.gen(function*() {
        const sum = yield* Effect.flatMap(Portable.sumOfDoubles(4), Task.await)
        return [sum, yield* TaskPool.stats] as const
      }).pipe(Effect.provide(onThreads))
      assert.strictEqual(sum, (1 + 2 + 3 + 4) * 2 + 200)
      assert.strictEqual(stats.submitted, 1 + 4 + 1)
      assert.strictEqual(stats.succeeded, 6)
    }))

  it.live("Task.forEach from a worker returns the results in order", () =>
    Effect.gen(function*() {
      const doubled = yield* Effect.flatMap(Portable.doublesInOrder(5), Task.await).pipe(Effect.provide(onThreads))
      assert.deepStrictEqual(doubled, [2, 4, 6, 8, 10])
    }))

  it.live("Task.forEach from a worker takes items one at a time: an endless source stops at the first failure", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.flatMap(Portable.findInEndless(0), Task.await).pipe(Effect.provide(onThreads), Effect.exit)
      assert.deepStrictEqual(errorOf(exit), new Portable.NotFound({ id: 1 }))
    }))

  it.live("are counted by join and by the scope, even with maxWorkers 1", () =>
    Effect.gen(function*() {
      const result = yield* Effect.gen(function*() {
        const handle = yield* Portable.spawnAndJoin(3)
        yield* TaskPool.join
        return [yield* Task.await(handle), yield* TaskPool.stats] as const
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1, threads: 1 })))
      assert.strictEqual(result[0], 3)
      assert.strictEqual(result[1].succeeded, 4)
      assert.strictEqual(result[1].running, 0)
    }))

  it.live("a failing task fails the worker's group with its typed error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flatMap(Portable.failingGroup(7), Task.await).pipe(Effect.provide(onThreads), Effect.flip)
      assert.instanceOf(error, Portable.NotFound)
      assert.strictEqual((error as Portable.NotFound).id, 7)
    }))

  it.live("must be portable", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.flatMap(Portable.submitsLocal(undefined), Task.await).pipe(Effect.provide(onThreads), Effect.exit)
      assert.isTrue(Exit.isFailure(exit) && Cause.pretty(exit.cause).includes(`Task "local" is not portable`))
    }))
})

describe("a worker thread that dies", () => {
  /** Runs `submit` in its own group, so that its failure is this test's to look at, not the pool's. */
  const attempt = <A, E>(submit: Effect.Effect<Task.Handle<A, E>, E, TaskPool.TaskPool>) =>
    Task.group(Effect.flatMap(submit, Task.await)).pipe(Effect.exit)

  it.live.each([
    ["an uncaught exception", "throw", "crashed: uncaught in the worker"],
    ["process.exit", "exit", "exited with code: 3"],
    ["running out of memory", "oom", "ran out of memory"]
  ] as const)("by %s: the tasks it held run again; the task that crashed it fails at crashLimit; the pool goes on", ([, how, reason]) =>
    Effect.gen(function*() {
      const [neighbours, crashed, after] = yield* Effect.gen(function*() {
        const [neighbours, crashed] = yield* Effect.all([
          Effect.all([1, 2, 3].map((value) => attempt(Portable.slowEcho({ value, millis: 200 }))), { concurrency: "unbounded" }),
          attempt(Portable.crash(how))
        ], { concurrency: "unbounded" })
        const after = yield* Effect.flatMap(Portable.double(5), Task.await)
        return [neighbours, crashed, after] as const
      }).pipe(Effect.provide(TaskPool.layer({
        maxWorkers: 4,
        threads: 2,
        crashLimit: 2,
        resourceLimits: { maxOldGenerationSizeMb: 64 }
      })))
      assert.deepStrictEqual(neighbours, [Exit.succeed(1), Exit.succeed(2), Exit.succeed(3)], "a crash costs the others nothing")
      const error = errorOf(crashed)
      assert.instanceOf(error, TaskError.WorkerCrashError)
      assert.strictEqual((error as TaskError.WorkerCrashError).task, "crash")
      assert.strictEqual((error as TaskError.WorkerCrashError).crashes, 2)
      assert.include((error as TaskError.WorkerCrashError).reason, reason)
      assert.strictEqual(after.value, 10)
    }), 60_000)

  it.live("a task that crashes every thread, retried for ever, is given up; the healthy tasks beside it all succeed", () =>
    Effect.gen(function*() {
      const [poisoned, doubles, stats] = yield* Effect.gen(function*() {
        const poisoned = yield* Effect.forkChild(attempt(Portable.poison(0)))
        const doubles = yield* Effect.forEach(Array.from({ length: 60 }, (_, i) => i), (i) => Effect.flatMap(Portable.double(i), Task.await), {
          concurrency: "unbounded"
        })
        return [yield* Fiber.join(poisoned), doubles, yield* TaskPool.stats] as const
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 8, threads: 2 })))
      const error = errorOf(poisoned)
      assert.instanceOf(error, TaskError.WorkerCrashError)
      assert.strictEqual((error as TaskError.WorkerCrashError).crashes, TaskPool.defaultCrashLimit)
      assert.deepStrictEqual(doubles.map((result) => result.value), Array.from({ length: 60 }, (_, i) => i * 2))
      assert.strictEqual(stats.failed, 1)
    }), 60_000)

  it.live("a task that crashed its thread once runs again on a new one", () =>
    Effect.gen(function*() {
      const marker = join(mkdtempSync(join(tmpdir(), "lateral-crash-once-")), "crashed")
      const result = yield* Effect.flatMap(Portable.crashOnce(marker), Task.await).pipe(
        Effect.provide(TaskPool.layer({ maxWorkers: 1, threads: 1 }))
      )
      assert.strictEqual(result, "second attempt")
    }))
})

describe("a thread whose task does not let go", () => {
  it.live("is stopped after a grace period when the task times out; the next task runs on a new thread", () =>
    Effect.gen(function*() {
      const [before, timedOut, after] = yield* Effect.gen(function*() {
        const before = yield* Effect.flatMap(Portable.double(1), Task.await)
        // 20 s of spinning: had the pool waited for it, the test would time out.
        const timedOut = yield* Effect.flip(Task.group(Effect.flatMap(Portable.stuck(20_000), Task.await)))
        const after = yield* Effect.flatMap(Portable.double(2), Task.await)
        return [before, timedOut, after] as const
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1, threads: 1 })))
      assert.instanceOf(timedOut, TaskError.TaskTimeoutError)
      assert.strictEqual(after.value, 4)
      assert.notStrictEqual(after.thread, before.thread, "a new thread took over")
    }), 15_000)

  it.live("does not hold up the pool's close: its timeout interrupts the task and stops the thread", () =>
    Effect.gen(function*() {
      const error = yield* Effect.asVoid(Portable.spin(20_000)).pipe(
        Effect.provide(TaskPool.layer({ maxWorkers: 1, threads: 1, timeout: "100 millis" })),
        Effect.flip
      )
      assert.strictEqual((error as { readonly _tag: string })._tag, "PoolTimeoutError")
    }), 15_000)
})

describe("a lane on a thread", () => {
  it.live("is free only when its timed-out task's finalizers are done", () =>
    Effect.gen(function*() {
      const marker = join(mkdtempSync(join(tmpdir(), "lateral-overlap-")), "finalizer")
      const [timedOut, overlapped] = yield* Effect.gen(function*() {
        const timedOut = yield* Effect.flip(Task.group(Effect.flatMap(Portable.holdConnectionBriefly({ millis: 5_000, finalizeMillis: 300, marker }), Task.await)))
        const overlapped = yield* Effect.flatMap(Portable.overlapsFinalizer(0), Task.await)
        return [timedOut, overlapped] as const
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1, threads: 1 })))
      assert.instanceOf(timedOut, TaskError.TaskTimeoutError)
      assert.isFalse(overlapped, "the next task started after the finalizer had run")
      assert.strictEqual(readFileSync(marker, "utf8"), "open")
    }), 15_000)

  it.live("keeps its worker-local instances until the task interrupted with the program has run its finalizers", () =>
    Effect.gen(function*() {
      const marker = join(mkdtempSync(join(tmpdir(), "lateral-release-")), "finalizer")
      // The program is interrupted while the task holds the connection.
      const exit = yield* Effect.gen(function*() {
        yield* Portable.holdConnection({ millis: 5_000, finalizeMillis: 300, marker })
        while (!existsSync(`${marker}.started`)) yield* Effect.sleep(10)
        return yield* Effect.interrupt
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 1, threads: 1 })), Effect.exit)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(readFileSync(marker, "utf8"), "open", "the finalizer saw its connection open")
    }), 15_000)
})

/** Runs a fixture in a fresh Node process, killing it after 20 s. */
const runScript = (file: string) =>
  Effect.callback<{ code: number; stdout: string }>((resume) => {
    const script = fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url))
    const child = execFile(process.execPath, [script], { timeout: 20_000 }, (error, stdout) =>
      resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout })))
    return Effect.sync(() => child.kill())
  })

describe("threads", () => {
  it.live("start with the first portable task, not before", () =>
    Effect.gen(function*() {
      const [before, after] = yield* Effect.gen(function*() {
        const before = yield* TaskPool.stats
        yield* Effect.flatMap(Portable.double(1), Task.await)
        return [before, yield* TaskPool.stats] as const
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 4, threads: 2 })))
      assert.strictEqual(before.threads, 0)
      assert.strictEqual(after.threads, 2, "the first portable task starts every thread")
    }))

  it.live("default to min(maxWorkers, cores); LATERAL_THREADS sets them, an explicit option wins", () =>
    Effect.gen(function*() {
      const threadsUsed = (layer: Layer.Layer<TaskPool.TaskPool, unknown>) =>
        Effect.gen(function*() {
          yield* awaitAll(Effect.forEach([1, 2, 3, 4, 5, 6], (n) => Portable.double(n)))
          return (yield* TaskPool.stats).threads
        }).pipe(Effect.provide(layer))
      const env = (vars: Record<string, string>) => Layer.succeed(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: vars }))
      assert.strictEqual(yield* threadsUsed(TaskPool.layer({ maxWorkers: 1 })), 1)
      assert.strictEqual(yield* threadsUsed(TaskPool.layer({ maxWorkers: 8 })), 2)
      assert.strictEqual(yield* threadsUsed(Layer.provide(TaskPool.layerConfig(), env({ LATERAL_THREADS: "1" }))), 1)
      assert.strictEqual(yield* threadsUsed(Layer.provide(TaskPool.layerConfig({ threads: 2 }), env({ LATERAL_THREADS: "1" }))), 2)
      assert.strictEqual(yield* threadsUsed(Layer.provide(TaskPool.layerConfig(), env({ LATERAL_THREADS: "0" }))), 0)
      const error = yield* Effect.flip(threadsUsed(Layer.provide(TaskPool.layerConfig(), env({ LATERAL_THREADS: "-1" }))))
      assert.include(String(error), `LATERAL_THREADS="-1" is not a non-negative integer`)
    }))

  it.live("are not started by pools made inside a worker thread, so a task module without a main guard cannot multiply them", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* runScript("unguarded.ts")
      assert.strictEqual(code, 0)
      const lines = stdout.trim().split("\n").sort()
      assert.include(lines, "program ran on the main thread with 2 threads")
      assert.isTrue(lines.filter((line) => line.includes("worker thread")).every((line) => line.endsWith("with 0 threads")))
    }), 30_000)

  it.live("refuse, at Task.make, schemas made by another copy of effect, whose values could not cross threads", () =>
    Effect.gen(function*() {
      const root = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "lateral-effect-copy-"))),
        (root) => Effect.sync(() => rmSync(root, { recursive: true, force: true }))
      )
      // Under node_modules, so that vitest leaves it to Node, as it does the installed copy.
      const copy = join(root, "node_modules", "effect")
      const installed = fileURLToPath(new URL("../node_modules/effect/", import.meta.url))
      cpSync(join(installed, "package.json"), join(copy, "package.json"))
      cpSync(join(installed, "dist"), join(copy, "dist"), { recursive: true, filter: (file) => !/\.(map|d\.ts)$/.test(file) })
      const Other = (yield* Effect.promise(() => import(pathToFileURL(join(copy, "dist", "Schema.js")).href))) as typeof Schema
      assert.throws(
        () => Task.make("half", (n: number) => Effect.succeed(n / 2), { module: import.meta.url, payload: Other.Number, success: Schema.Number }),
        `Task "half": its payload schema comes from another copy of "effect" than effect-lateral's`
      )
    }))

  it.live("leave nothing behind: the process exits by itself when the pool closes", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* runScript("exits.ts")
      assert.strictEqual(code, 0, "the process exited on its own, before the 20 s kill")
      assert.include(stdout, "pool closed")
    }), 30_000)
})

describe("pool options for threads", () => {
  it.live("never more threads than tasks can run at once", () =>
    Effect.gen(function*() {
      const stats = yield* Effect.gen(function*() {
        yield* Effect.forEach([1, 2, 3, 4], (n) => Effect.flatMap(Portable.double(n), Task.await), { concurrency: "unbounded" })
        return yield* TaskPool.stats
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2, threads: 16 })))
      assert.strictEqual(stats.threads, 2)
    }))

  it.live("warmUp starts the threads when the pool is built", () =>
    Effect.gen(function*() {
      const stats = yield* TaskPool.stats.pipe(Effect.provide(TaskPool.layer({ maxWorkers: 4, threads: 2, warmUp: true })))
      assert.strictEqual(stats.threads, 2)
    }))

  it.live.each(pools)("%s: a result that breaks its success schema is the same defect", ([, pool]) =>
    Effect.gen(function*() {
      const exit = yield* Effect.flatMap(Portable.badResult(1), Task.await).pipe(Effect.provide(pool), Effect.exit)
      assert.isTrue(Exit.isFailure(exit) && Cause.pretty(exit.cause).includes(`Task "badResult" returned a value its success schema cannot encode`))
    }))

  it.live("a task module's own timer does not hold up the pool's close", () =>
    Effect.gen(function*() {
      const { tick } = yield* Effect.promise(() => import("./fixtures/timer.ts"))
      const started = Date.now()
      const value = yield* Effect.flatMap(tick(1), Task.await).pipe(Effect.provide(TaskPool.layer({ threads: 1 })))
      assert.strictEqual(value, 2)
      // A thread kept alive by the timer would hold the close for the workers' 5 s shutdown wait.
      assert.isBelow(Date.now() - started, 4_500)
    }), 20_000)
})

describe("transfer", () => {
  it.live("moves a payload's buffer to the thread and the result's back, instead of copying them", () =>
    Effect.gen(function*() {
      const payload = new Uint8Array([1, 2, 3, 4])
      const result = yield* Effect.flatMap(Portable.reverseBytes(payload), Task.await).pipe(
        Effect.provide(TaskPool.layer({ maxWorkers: 2, threads: 1 }))
      )
      assert.deepStrictEqual([...result], [4, 3, 2, 1])
      assert.strictEqual(payload.byteLength, 0, "the caller's buffer moved to the thread")
    }))

  it.live("copies a view into part of a buffer (such as a pooled Buffer): moving it would take the rest away", () =>
    Effect.gen(function*() {
      const whole = new Uint8Array([9, 1, 2, 3, 9])
      const part = whole.subarray(1, 4)
      const result = yield* Effect.flatMap(Portable.reverseBytes(part), Task.await).pipe(
        Effect.provide(TaskPool.layer({ maxWorkers: 2, threads: 1 }))
      )
      assert.deepStrictEqual([...result], [3, 2, 1])
      assert.deepStrictEqual([...whole], [9, 1, 2, 3, 9])
    }))
})

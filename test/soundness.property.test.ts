/**
 * A randomized property over generated programs: task trees that fan out
 * (one call at a time, or `Task.forEach`), await, group, join, time out, fail,
 * die, use worker-local instances and are
 * interrupted at a random moment, under `maxWorkers` 1 to 3. For every case:
 *
 * - the program settles (on the test clock, within a bound);
 * - submitted = succeeded + failed + interrupted, nothing left running or queued;
 * - no more tasks run code at once than there are lanes;
 * - no worker-local instance is used by two tasks at once, and a task keeps its own;
 * - `join` never returns while a task it covers is unfinished;
 * - every acquired resource is released.
 *
 * `LATERAL_PROPERTY_RUNS` sets how many cases run (`npm run soak` runs many more).
 * `LATERAL_PROPERTY_CASE='[choices]'` replays one case (the shrunk input a
 * failure prints) and prints the program it stands for.
 */
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Cause, Clock, Effect, Exit, Fiber, Schedule, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Task, TaskPool, WorkerLocal } from "effect-lateral"
import { Boom } from "./helpers.ts"

const runs = Number(process.env.LATERAL_PROPERTY_RUNS ?? 2000)

// -----------------------------------------------------------------------------
// programs

type Step =
  | { readonly _tag: "work"; readonly millis: number }
  | { readonly _tag: "spawn"; readonly child: Spec }
  | { readonly _tag: "detached"; readonly child: Spec; readonly delay: number }
  | { readonly _tag: "await"; readonly child: Spec; readonly handle: boolean }
  | { readonly _tag: "group"; readonly children: ReadonlyArray<Spec>; readonly handle: boolean }
  | {
    readonly _tag: "forEach"
    readonly children: ReadonlyArray<Spec>
    readonly handle: boolean
    /** Where the items come from, and whether the results are kept. */
    readonly source: "array" | "generator" | "stream"
    readonly keep: boolean
  }
  | { readonly _tag: "join" }
  | { readonly _tag: "fail" }
  | { readonly _tag: "die" }
  | { readonly _tag: "local"; readonly millis: number }
  | { readonly _tag: "impatient"; readonly child: Spec; readonly patience: number }

interface Spec {
  readonly steps: ReadonlyArray<Step>
  readonly timeout: number | undefined
  readonly retry: boolean
}

interface Case {
  readonly maxWorkers: number
  readonly blockWhenSaturated: boolean
  readonly poolTimeout: number | undefined
  /** Virtual milliseconds after which the whole program is interrupted, if set. */
  readonly interruptAfter: number | undefined
  /** How long acquiring a worker-local instance takes. */
  readonly acquireMillis: number
  readonly program: ReadonlyArray<Step>
}

/** What a step may be, weighted by repetition: the program around the tasks, a task, a task at the deepest level. */
const programKinds = ["spawn", "spawn", "spawn", "await", "group", "group", "forEach", "join", "join", "fail", "impatient"] as const
const taskKinds = ["work", "work", "local", "spawn", "detached", "detached", "await", "group", "forEach", "join", "fail", "impatient"] as const
const leafKinds = ["work", "local"] as const

/**
 * Builds a case from a list of choices, so that shrinking the list simplifies
 * the program. An exhausted list reads as zeros: no more steps.
 */
const build = (choices: ReadonlyArray<number>): Case => {
  let i = 0
  const next = (n: number) => i < choices.length ? choices[i++]! % n : 0
  const millis = () => 5 + next(4) * 10
  const spec = (depth: number): Spec => ({
    timeout: next(4) === 0 ? 30 + next(6) * 40 : undefined,
    retry: next(5) === 0,
    steps: steps(depth)
  })
  const children = (depth: number) => Array.from({ length: 1 + next(4) }, () => spec(depth + 1))
  const steps = (depth: number): Array<Step> => {
    const result: Array<Step> = []
    // The program itself always does something; deeper tasks do less, and the deepest only work.
    const count = depth === 0 ? 1 + next(6) : next(4)
    for (let s = 0; s < count; s++) {
      const kinds = depth >= 3 ? leafKinds : depth === 0 ? programKinds : taskKinds
      const kind = kinds[next(kinds.length)]!
      switch (kind) {
        case "work":
        case "local":
          result.push({ _tag: kind, millis: millis() })
          break
        case "spawn":
          result.push({ _tag: "spawn", child: spec(depth + 1) })
          break
        case "detached":
          result.push({ _tag: "detached", child: spec(depth + 1), delay: next(4) * 10 })
          break
        case "await":
          result.push({ _tag: "await", child: spec(depth + 1), handle: next(2) === 0 })
          break
        case "group":
          result.push({ _tag: kind, children: children(depth), handle: next(2) === 0 })
          break
        case "forEach":
          result.push({
            _tag: kind,
            children: children(depth),
            handle: next(2) === 0,
            source: (["array", "generator", "stream"] as const)[next(3)]!,
            keep: next(2) === 0
          })
          break
        case "join":
          result.push({ _tag: "join" })
          break
        case "fail":
          result.push({ _tag: next(2) === 0 ? "fail" : "die" })
          break
        case "impatient":
          result.push({ _tag: "impatient", child: spec(depth + 1), patience: 5 + next(4) * 15 })
      }
    }
    return result
  }
  const maxWorkers = 1 + next(3)
  const blockWhenSaturated = next(3) === 0
  const poolTimeout = next(4) === 0 ? 100 + next(10) * 50 : undefined
  const interruptAfter = next(3) === 0 ? next(20) * 15 : undefined
  const acquireMillis = next(3) * 30
  return { maxWorkers, blockWhenSaturated, poolTimeout, interruptAfter, acquireMillis, program: steps(0) }
}

// -----------------------------------------------------------------------------
// running a case, with the checks

/** What a case observed while it ran. */
class Observer {
  readonly problems: Array<string> = []
  codeRunning = 0
  maxCodeRunning = 0
  /** The calls running code now, each with when that code started (a call's fibers may run code at once). */
  readonly runningCalls: Array<Running> = []
  /** Spans of virtual time during which every lane ran code, with the calls that ran it; and the current one. */
  readonly lanesFull: Array<{ readonly start: number; readonly end: number; readonly calls: ReadonlyArray<Running> }> = []
  lanesFullSince: { readonly start: number; readonly calls: ReadonlyArray<Running> } | undefined = undefined

  /** The call that submitted `call` (0: code outside tasks). */
  parentOf(call: number): number {
    return this.runs.find((run) => run.call === call)?.parent ?? 0
  }
  acquired = 0
  released = 0
  private nextCall = 0
  /** Every submitted run: its handle, and the call that submitted it (0: code outside tasks). */
  readonly runs: Array<{ readonly call: number; readonly parent: number; readonly handle: Task.Handle<unknown, unknown> }> = []
  /** The instance each call first got. */
  readonly instances = new Map<number, Instance>()
  /** When each call failed (its `fail` step). */
  readonly failedAt = new Map<number, number>()

  newCall(): number {
    return ++this.nextCall
  }

  /** The calls that descend from `call`, submitted so far. */
  descendants(call: number): Array<number> {
    const found = new Set([call])
    for (const run of this.runs) if (found.has(run.parent)) found.add(run.call)
    found.delete(call)
    return [...found]
  }
}

interface Running {
  readonly call: number
  readonly since: number
}

/** How late a timeout, an interruption or a group's failure may take effect, in virtual ms. */
const slack = 5

interface Instance {
  readonly id: number
  owner: number | undefined
}

const finished = (handle: Task.Handle<unknown, unknown>) => (handle as unknown as { readonly exit?: unknown }).exit !== undefined

const runCase = (c: Case) =>
  Effect.gen(function*() {
    const seen = new Observer()
    let instances = 0
    const local = WorkerLocal.make(
      Effect.acquireRelease(
        Effect.sync((): Instance => {
          seen.acquired++
          return { id: ++instances, owner: undefined }
        }),
        () => Effect.sync(() => seen.released++)
      ).pipe(Effect.tap(() => Effect.sleep(c.acquireMillis)))
    )

    /**
     * Code that runs for `millis`; inside a task (not the code around them,
     * `call` 0) it counts against the lanes. It starts interruptibly: a task
     * being stopped runs only its finalizers, without a lane.
     */
    const work = (call: number, millis: number) => call === 0 ? Effect.sleep(millis) : runningCode(call, Effect.sleep(millis))

    /** `code` run by `call` (a task) as code that holds a lane: counted against the lanes. */
    const runningCode = <A, E, R>(call: number, code: Effect.Effect<A, E, R>) =>
      Effect.flatMap(Clock.currentTimeMillis, (started) => {
        seen.codeRunning++
        seen.maxCodeRunning = Math.max(seen.maxCodeRunning, seen.codeRunning)
        const running = { call, since: started }
        seen.runningCalls.push(running)
        if (seen.codeRunning === c.maxWorkers) seen.lanesFullSince = { start: started, calls: [...seen.runningCalls] }
        return Effect.ensuring(
          code,
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.sync(() => {
              seen.runningCalls.splice(seen.runningCalls.indexOf(running), 1)
              if (seen.codeRunning-- === c.maxWorkers && seen.lanesFullSince !== undefined) {
                seen.lanesFull.push({ ...seen.lanesFullSince, end: now })
                seen.lanesFullSince = undefined
              }
            }))
        )
      })

    /**
     * How long, between `from` and `to`, every lane ran code that `excused` lets through: code beside
     * which nothing else could run.
     */
    const lanesHeldBetween = (from: number, to: number, excused: (running: Running) => boolean) => {
      const spans = seen.lanesFullSince === undefined ? seen.lanesFull : [...seen.lanesFull, { ...seen.lanesFullSince, end: to }]
      return spans
        .filter((span) => span.calls.every(excused))
        .reduce((total, span) => total + Math.max(0, Math.min(span.end, to) - Math.max(span.start, from)), 0)
    }

    /** Uses the instance of this call (0: outside tasks), checking nobody else holds it. */
    const useLocal = (call: number, millis: number) =>
      Effect.gen(function*() {
        // Acquiring an instance (which takes `acquireMillis` when none is free) is the task's code too.
        const instance = yield* (call === 0 ? local : runningCode(call, local))
        if (instance.owner !== undefined && instance.owner !== call) {
          seen.problems.push(`instance ${instance.id} used by call ${call} while call ${instance.owner} holds it`)
        }
        const first = seen.instances.get(call)
        if (call !== 0 && first !== undefined && first !== instance) {
          seen.problems.push(`call ${call} got instance ${instance.id} after instance ${first.id}`)
        }
        seen.instances.set(call, instance)
        if (call !== 0) instance.owner = call
        yield* work(call, millis)
      })

    /** Waits (by looking every virtual millisecond) until the run of `call` has finished. */
    const runEnded = (call: number) =>
      Effect.sleep(1).pipe(Effect.repeat({
        until: () => seen.runs.some((run) => run.call === call && finished(run.handle))
      }))

    /** One attempt of `call` running `spec`'s steps; `ended` runs once it has. */
    const attempt = (spec: Spec, call: number, ended: Effect.Effect<void> = Effect.void) =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        yield* interpret(spec.steps, call).pipe(
          Effect.onExit(() =>
            Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Effect.sync(() => {
                // A finished attempt gives its instance back.
                const instance = seen.instances.get(call)
                if (instance?.owner === call) instance.owner = undefined
                if (spec.timeout !== undefined && now - started > spec.timeout + slack) {
                  seen.problems.push(`an attempt of call ${call} ran ${now - started} ms, past its ${spec.timeout} ms timeout`)
                }
              })
            ).pipe(Effect.andThen(ended))
          )
        )
      })

    const tasks = new Map<Spec, Task.Task<[number], void, unknown, never>>()
    const taskOf = (spec: Spec): Task.Task<[number], void, unknown, never> => {
      let task = tasks.get(spec)
      if (task === undefined) {
        task = Task.make("node", (call: number) => attempt(spec, call), {
          timeout: spec.timeout,
          retry: spec.retry ? Schedule.recurs(1) : undefined
        }) as unknown as Task.Task<[number], void, unknown, never>
        tasks.set(spec, task)
      }
      return task
    }

    /**
     * The task `Task.forEach` maps over a step's children (one task, so one
     * timeout for all, and no retry): each item records itself as a call, and
     * as finished once its attempt has ended (a little before its run has).
     */
    interface Item {
      readonly spec: Spec
      readonly parent: number
    }
    const itemTasks = new Map<number | undefined, Task.Task<[Item], void, unknown, never>>()
    const itemTaskOf = (timeout: number | undefined) => {
      let task = itemTasks.get(timeout)
      if (task === undefined) {
        task = Task.make("item", (item: Item) =>
          Effect.suspend(() => {
            const call = seen.newCall()
            const handle = { exit: undefined as unknown }
            seen.runs.push({ call, parent: item.parent, handle: handle as unknown as Task.Handle<unknown, unknown> })
            return attempt({ ...item.spec, timeout }, call, Effect.sync(() => {
              handle.exit = true
            }))
          }), { timeout }) as unknown as Task.Task<[Item], void, unknown, never>
        itemTasks.set(timeout, task)
      }
      return task
    }

    const submit = (spec: Spec, parent: number) =>
      Effect.suspend(() => {
        const call = seen.newCall()
        return Effect.tap(taskOf(spec)(call), (handle) => Effect.sync(() => seen.runs.push({ call, parent, handle })))
      })

    /** `join` returned: every run it covers has finished. */
    const checkJoin = (call: number, before: number) =>
      Effect.sync(() => {
        const covered = call === 0
          ? seen.runs.filter((run, index) => index < before && run.parent === 0).map((run) => run.call)
          : []
        const calls = call === 0 ? [...covered, ...covered.flatMap((c) => seen.descendants(c))] : seen.descendants(call)
        for (const run of seen.runs) {
          if (calls.includes(run.call) && !finished(run.handle)) {
            seen.problems.push(`join in call ${call} returned while call ${run.call} was unfinished`)
          }
        }
      })

    /**
     * A group that fails with a task's error fails when that task did, not later, but for the time
     * its caller waited for a lane that other tasks' code held (the caller's next step is code too).
     */
    const checkFailFast = (error: unknown, call: number, firstRun: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          if (!(error instanceof Boom)) return
          const failedAt = seen.failedAt.get(error.id)
          // The group's tasks: what `call` submitted from `firstRun` on, and their descendants.
          const members = seen.runs.slice(firstRun).filter((run) => run.parent === call).map((run) => run.call)
          const group = new Set([...members, ...members.flatMap((member) => seen.descendants(member))])
          // The failure travels up from the failing task through the tasks between it and the group: each
          // of those raises it in its own code, which needs a lane. Code of the group's own tasks is excused
          // only when the failure came from deeper down and that code started after it: the group could
          // not know yet.
          const path = new Set<number>()
          for (let at = error.id; at !== 0 && at !== call; at = seen.parentOf(at)) path.add(at)
          const direct = members.includes(error.id)
          const excused = (running: Running) =>
            !path.has(running.call) &&
            (!group.has(running.call) || (!direct && failedAt !== undefined && running.since >= failedAt))
          if (failedAt !== undefined && now - failedAt - lanesHeldBetween(failedAt, now, excused) > slack) {
            seen.problems.push(`a group failed ${now - failedAt} ms after its task (call ${error.id}) did`)
          }
        })
      )

    const interpret = (steps: ReadonlyArray<Step>, call: number): Effect.Effect<void, unknown, TaskPool.TaskPool> =>
      Effect.forEach(steps, (step): Effect.Effect<unknown, unknown, TaskPool.TaskPool> => {
        switch (step._tag) {
          case "work":
            return work(call, step.millis)
          case "local":
            return useLocal(call, step.millis)
          case "spawn":
            return submit(step.child, call)
          case "detached":
            // A fiber that outlives its task, and submits a task after it has ended. (While the task
            // runs, its fibers share its lane: one that waits on the pool lends it, as documented.)
            return Effect.forkDetach(Effect.andThen(runEnded(call), Effect.andThen(Effect.sleep(step.delay), submit(step.child, call))))
          case "await": {
            const awaited = Effect.flatMap(submit(step.child, call), Task.await)
            return step.handle ? Effect.ignore(awaited) : awaited
          }
          case "group": {
            const grouped = Effect.suspend(() => {
              const firstRun = seen.runs.length
              return Task.group(Effect.forEach(step.children, (child) => submit(child, call), { discard: true })).pipe(
                Effect.tapError((error) => checkFailFast(error, call, firstRun))
              )
            })
            return step.handle ? Effect.ignore(grouped) : grouped
          }
          case "forEach": {
            const items = step.children.map((spec) => ({ spec, parent: call }))
            const source = step.source === "array"
              ? items
              : step.source === "generator"
              ? (function*() {
                yield* items
              })()
              : Stream.fromIterable(items).pipe(Stream.rechunk(2))
            const each = Effect.suspend(() => {
              const firstRun = seen.runs.length
              return Task.forEach(source, itemTaskOf(step.children[0]!.timeout), { discard: !step.keep }).pipe(
                Effect.tapError((error) => checkFailFast(error, call, firstRun))
              )
            })
            return step.handle ? Effect.ignore(each) : each
          }
          case "join":
            return Effect.suspend(() => {
              const before = seen.runs.length
              return Effect.andThen(TaskPool.join, checkJoin(call, before))
            })
          case "fail":
            return Effect.flatMap(Clock.currentTimeMillis, (now) => {
              seen.failedAt.set(call, now)
              return Effect.fail(new Boom({ id: call }))
            })
          case "die":
            return Effect.die(new Error(`defect in call ${call}`))
          case "impatient":
            return Effect.flatMap(submit(step.child, call), (handle) => Effect.timeoutOption(Task.await(handle), step.patience))
        }
      }, { discard: true })

    let pool: TaskPool.Service | undefined
    const program = Effect.gen(function*() {
      pool = yield* TaskPool.TaskPool
      yield* interpret(c.program, 0)
    }).pipe(Effect.provide(TaskPool.layer({
      maxWorkers: c.maxWorkers,
      blockWhenSaturated: c.blockWhenSaturated,
      threads: 0,
      ...(c.poolTimeout === undefined ? {} : { timeout: c.poolTimeout })
    })))

    // Detached: a program that never settles must not hold up the test.
    const fiber = yield* Effect.forkDetach(program)
    const step = 5
    let elapsed = 0
    let interrupted = false
    for (let round = 0; round < 4000 && fiber.pollUnsafe() === undefined; round++) {
      if (!interrupted && c.interruptAfter !== undefined && elapsed >= c.interruptAfter) {
        interrupted = true
        yield* Effect.forkDetach(Fiber.interrupt(fiber))
        // Stopping waits on nothing that takes time: it settles before the clock moves again.
        for (let i = 0; i < 500 && fiber.pollUnsafe() === undefined; i++) yield* Effect.yieldNow
        assert.isDefined(fiber.pollUnsafe(), "an interrupted program settles at once, its finalizers run")
        break
      }
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow
      yield* TestClock.adjust(step)
      elapsed += step
    }
    const exit = fiber.pollUnsafe()
    assert.isDefined(exit, `the program settled within ${elapsed} virtual ms`)
    // A program interrupted before it started has no pool to look at.
    if (pool === undefined) return Exit.isFailure(exit!) && Cause.hasInterruptsOnly(exit.cause)

    const stats = yield* pool.stats
    assert.deepStrictEqual(seen.problems, [], seen.problems.join("; "))
    assert.strictEqual(stats.submitted, stats.succeeded + stats.failed + stats.interrupted, "every run is counted once")
    assert.strictEqual(stats.running, 0)
    assert.strictEqual(stats.queued, 0)
    assert.isAtMost(seen.runs.length, stats.submitted)
    assert.isAtMost(seen.maxCodeRunning, c.maxWorkers, "no more tasks ran code at once than there are lanes")
    assert.strictEqual(seen.codeRunning, 0)
    assert.strictEqual(seen.acquired, seen.released, "every instance was released")
    for (const run of seen.runs) assert.isTrue(finished(run.handle), "every run finished")
    if (process.env.LATERAL_PROPERTY_DEBUG) console.log(JSON.stringify({ submitted: stats.submitted, failed: stats.failed, interrupted: stats.interrupted, elapsed, exit: exit!._tag }))
    return true
  })

const Choices = Arbitrary.array(Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 99 }))), {
  minLength: 30,
  maxLength: 160
})

const replay = process.env.LATERAL_PROPERTY_CASE

/** Programs the property once failed on (an engine bug, or a check too strict), kept as programs (not choices) so that they survive changes to `build`. */
const found: ReadonlyArray<readonly [string, Case]> = [
  [
    "a task being stopped whose wait ended (by another's stopping) before its own interruption ran code without a lane",
    JSON.parse(
      '{"maxWorkers": 1, "blockWhenSaturated": false, "poolTimeout": 100, "interruptAfter": 105, "acquireMillis": 60, "program": [{"_tag": "join"}, {"_tag": "spawn", "child": {"retry": true, "steps": [{"_tag": "await", "child": {"timeout": 110, "retry": true, "steps": [{"_tag": "await", "child": {"timeout": 110, "retry": true, "steps": [{"_tag": "local", "millis": 25}]}, "handle": true}, {"_tag": "fail"}]}, "handle": true}, {"_tag": "work", "millis": 5}]}}]}'
    ) as Case
  ],
  [
    "a group's caller that waits for a lane another task's code holds raises the group's failure once it has one (not a late failure)",
    JSON.parse(
      '{"maxWorkers": 1, "blockWhenSaturated": true, "acquireMillis": 0, "program": [{"_tag": "group", "children": [{"retry": true, "steps": [{"_tag": "spawn", "child": {"retry": true, "steps": [{"_tag": "work", "millis": 5}, {"_tag": "join"}, {"_tag": "work", "millis": 15}]}}, {"_tag": "group", "children": [{"retry": true, "steps": [{"_tag": "work", "millis": 5}, {"_tag": "fail"}]}], "handle": true}]}], "handle": true}]}'
    ) as Case
  ],
  [
    "a run whose blocked submitter went on (and failed the program) before the run could be stopped outlived the pool's close",
    JSON.parse(
      '{"maxWorkers": 1, "blockWhenSaturated": true, "interruptAfter": 15, "acquireMillis": 0, "program": [{"_tag": "await", "child": {"timeout": 30, "retry": true, "steps": [{"_tag": "work", "millis": 5}]}, "handle": true}, {"_tag": "spawn", "child": {"timeout": 30, "retry": true, "steps": [{"_tag": "work", "millis": 15}]}}, {"_tag": "fail"}, {"_tag": "spawn", "child": {"timeout": 30, "retry": true, "steps": []}}]}'
    ) as Case
  ],
  [
    "join inside a task returned while a descendant, submitted by a fiber that outlived a child as the join took its lane back, was unfinished",
    JSON.parse(
      '{"maxWorkers": 1, "blockWhenSaturated": false, "acquireMillis": 0, "program": [{"_tag": "group", "children": [{"retry": true, "steps": [{"_tag": "await", "child": {"retry": true, "steps": [{"_tag": "detached", "child": {"retry": true, "steps": []}, "delay": 0}, {"_tag": "work", "millis": 5}]}, "handle": true}, {"_tag": "join"}]}, {"retry": true, "steps": [{"_tag": "detached", "child": {"timeout": 150, "retry": true, "steps": []}, "delay": 0}, {"_tag": "work", "millis": 5}]}], "handle": true}]}'
    ) as Case
  ],
  [
    "a failure raised through a Task.forEach item that waited for its lane while the next item ran is not a late failure of the forEach",
    JSON.parse(
      '{"maxWorkers": 1, "blockWhenSaturated": true, "acquireMillis": 0, "program": [{"_tag": "forEach", "children": [{"retry": true, "steps": []}, {"retry": true, "steps": [{"_tag": "work", "millis": 5}, {"_tag": "work", "millis": 5}, {"_tag": "group", "children": [{"retry": true, "steps": [{"_tag": "fail"}]}], "handle": false}]}, {"timeout": 30, "retry": true, "steps": [{"_tag": "work", "millis": 5}, {"_tag": "work", "millis": 5}, {"_tag": "work", "millis": 5}]}], "handle": true, "source": "array", "keep": true}]}'
    ) as Case
  ],
  [
    "a group's caller that waits for a lane held by a task acquiring a worker-local instance is not a late failure",
    JSON.parse(
      '{"maxWorkers": 1, "blockWhenSaturated": false, "poolTimeout": 100, "acquireMillis": 30, "program": [{"_tag": "spawn", "child": {"retry": true, "steps": [{"_tag": "spawn", "child": {"retry": true, "steps": [{"_tag": "await", "child": {"retry": true, "steps": [{"_tag": "local", "millis": 5}]}, "handle": true}]}}, {"_tag": "group", "children": [{"retry": true, "steps": [{"_tag": "fail"}, {"_tag": "work", "millis": 5}]}], "handle": true}]}}]}'
    ) as Case
  ]
]

describe("the engine, on generated programs", () => {
  it.effect.runIf(replay !== undefined)("replays LATERAL_PROPERTY_CASE", () => {
    const c = build(JSON.parse(replay!) as Array<number>)
    console.log(JSON.stringify(c, null, 2))
    return Effect.asVoid(runCase(c))
  })

  it.effect.each(found)("replays a program it once failed on: %s", ([, c]) => Effect.asVoid(runCase(c)))

  it.effect.prop(
    "settles, counts every run once, bounds code by lanes and instances by tasks, and joins honestly",
    [Choices],
    ([choices]) => runCase(build(choices)),
    { timeout: 240_000, arbitrary: { runs } }
  )
})

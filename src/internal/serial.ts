/**
 * The serial pool: every task runs inline, in the caller's fiber, at its call.
 * This is pylateral with no pool entered. Failures follow the one contract of
 * both pools: a task's failure raises at its call and fails its group (or the
 * pool); a failed group raises it again at its end, a failed pool at its next
 * submit, `join` and close.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import type { Collect, Engine, GroupOutcome, Handle, Items } from "./engine.ts"
import { byCalls } from "./forEach.ts"
import { Group } from "./group.ts"
import { type Holder, LocalInstances } from "./locals.ts"
import { CurrentPlace, Run, type RunGroup } from "./run.ts"
import { Counters, type Stats } from "./stats.ts"
import { attempts } from "./attempts.ts"
import { encodeCall, inlineAttempt, type TaskDef } from "./taskDef.ts"
import * as Telemetry from "./telemetry.ts"
import { Watchers } from "./watchers.ts"

/** Builds the serial pool; its close raises the pool's failure, then releases worker-local instances. */
export const make: Effect.Effect<Engine, never, Scope.Scope> = Effect.gen(function*() {
  const scope = yield* Effect.scope
  const pool = new SerialPool(new LocalInstances(yield* Scope.fork(scope)))
  // Like the parallel pool's: a failure here reaches `Effect.provide(program, layer)` with its own type.
  yield* Scope.addFinalizerExit(scope, (exit) => pool.close(exit) as Effect.Effect<void>)
  return pool
})

class SerialPool implements Engine {
  readonly mode = "serial"
  readonly maxWorkers = 1
  private readonly locals: LocalInstances
  /** The one holder of worker-local instances: tasks and the code around them share one instance each. */
  private readonly holder: Holder = { locals: undefined }
  private readonly root: RunGroup
  private readonly counters = new Counters()
  private readonly watchers = new Watchers()
  readonly closed = this.watchers.closed
  readonly watch = this.watchers.watch

  constructor(locals: LocalInstances) {
    this.locals = locals
    this.root = new Group(this, undefined)
  }

  readonly submit = (fiber: Fiber.Fiber<unknown, unknown>, def: TaskDef, args: ReadonlyArray<unknown>): Effect.Effect<Run, unknown> => {
    // A payload that could not cross to a thread fails here too: the same program runs under both pools.
    const encoded = encodeCall(def, args)
    if (Result.isFailure(encoded)) return Effect.fail(encoded.failure)
    const place = fiber.getRef(CurrentPlace)
    const group: RunGroup = place !== undefined && place.group.owner === this ? place.group : this.root
    if (this.root.failure) return Effect.failCause(this.root.failure)
    if (group.closed) return Effect.die(new Error(`Task "${def.name}" was submitted after its Task.group ended`))
    if (group.failure) return Effect.failCause(group.failure)
    const run = new Run(this, def, args, encoded.success, fiber.context, group, undefined)
    this.counters.submit(def)
    this.counters.start(def)
    Telemetry.submitted(run)
    Telemetry.started(run)
    return Effect.suspend(() => Telemetry.traced(run, attempts(run, inlineAttempt(def, args) as Effect.Effect<unknown, unknown>))).pipe(
      Effect.updateContext((context: Context.Context<never>) => Telemetry.annotated(run, Context.add(context, CurrentPlace, run))),
      Effect.onExit((exit) => Effect.sync(() => this.finished(run, exit))),
      Effect.as(run)
    )
  }

  /** Counts a run's end; a failure fails its group, and raises at the call as it propagates. */
  private finished(run: Run, exit: Exit.Exit<unknown, unknown>): void {
    run.exit = exit
    const failure = this.counters.finished(run.def, exit, true)
    Telemetry.finished(run, exit, false)
    if (exit._tag === "Success") run.group.recordSuccess(run.def, exit.value)
    else if (failure && run.group.failure === undefined) run.group.failure = failure
  }

  readonly forEach = (_fiber: Fiber.Fiber<unknown, unknown>, def: TaskDef, items: Items, keep: boolean) =>
    byCalls(this, def, items, keep)

  readonly await = (handle: Handle<unknown, unknown>) => (handle as Run).exit ?? Effect.die(new Error(`Task "${handle.task}" has not finished`))

  readonly group = <A, E, R>(body: Effect.Effect<A, E, R>, collect: Collect): Effect.Effect<GroupOutcome<A>, E, R> =>
    Effect.withFiber((fiber) => {
      if (this.root.failure) return Effect.failCause(this.root.failure) as Effect.Effect<never>
      const group: RunGroup = new Group(this, collect)
      return body.pipe(
        Effect.provideService(CurrentPlace, { run: fiber.getRef(CurrentPlace)?.run, group }),
        // A failure the body handled still fails the group, as it would have stopped the body in the parallel pool.
        Effect.flatMap((value) => group.failure ? Effect.failCause(group.failure) as Effect.Effect<never> : Effect.succeed(group.outcome(value))),
        Effect.ensuring(Effect.sync(() => {
          group.closed = true
        }))
      )
    })

  private readonly raiseFailure = Effect.suspend(() => this.root.failure ? Effect.failCause(this.root.failure) as Effect.Effect<never> : Effect.void)

  readonly join = this.raiseFailure

  readonly local = <A, E, R>(key: object, acquire: Effect.Effect<A, E, R>) => this.locals.get(this.holder, key, acquire)

  readonly stats: Effect.Effect<Stats> = Effect.sync(() => this.counters.stats(0))

  /** The scope's finalizer: a program that succeeded still fails with the pool's failure. */
  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void, unknown> {
    return Effect.ensuring(exit._tag === "Success" ? this.raiseFailure : Effect.void, this.watchers.close)
  }
}

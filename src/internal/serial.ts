/**
 * The serial pool: every task runs inline, in the caller's fiber, at its call.
 * A failure surfaces at that call. This is pylateral with no pool entered.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Result from "effect/Result"
import { Counters, CurrentPlace, type Engine, Group, type GroupOutcome, type Handle, Lane, Run, type Stats, type TaskDef, Watchers } from "./model.ts"
import { encodeCall } from "./portable.ts"

/** Builds the serial pool; worker-local instances are released when the scope closes. */
export const make: Effect.Effect<Engine, never, Scope.Scope> = Effect.gen(function*() {
  const scope = yield* Effect.scope
  const watchers = new Watchers()
  yield* Scope.addFinalizer(scope, watchers.close)
  return new SerialPool(scope, watchers)
})

class SerialPool implements Engine {
  readonly mode = "serial"
  readonly maxWorkers = 1
  /** The one lane: tasks and the code around them share its worker-local instances. */
  private readonly lane = new Lane(0)
  private readonly root: Group
  private readonly counters = new Counters()

  private readonly scope: Scope.Scope
  readonly closed: Effect.Effect<void>
  readonly watch: (reporter: Effect.Effect<void>) => Effect.Effect<void>
  constructor(scope: Scope.Scope, watchers: Watchers) {
    this.scope = scope
    this.closed = watchers.closed
    this.watch = watchers.watch
    this.root = new Group(this, false)
  }

  readonly submit = (fiber: Fiber.Fiber<unknown, unknown>, def: TaskDef, args: ReadonlyArray<unknown>) => {
    // A payload that could not cross to a thread fails here too: the same program runs under both pools.
    const encoded = encodeCall(def, args)
    if (Result.isFailure(encoded)) return Effect.fail(encoded.failure)
    const place = fiber.getRef(CurrentPlace)
    const group = place !== undefined && place.group.owner === this ? place.group : this.root
    const run = new Run(this, def, args, fiber.context, group, undefined, undefined)
    this.counters.submitted++
    this.counters.running++
    run.lane = this.lane
    return Effect.suspend(() => def.attempts(def.run(args)) as Effect.Effect<unknown, unknown>).pipe(
      Effect.provideService(CurrentPlace, run),
      Effect.exit,
      Effect.flatMap((exit) => {
        run.exit = exit
        this.counters.running--
        this.counters.finished(exit)
        if (exit._tag === "Failure") return Effect.failCause(exit.cause) as Effect.Effect<never>
        group.recordSuccess(def, exit.value)
        return Effect.succeed(run)
      })
    )
  }

  readonly await = (handle: Handle<unknown, unknown>) => (handle as Run).exit ?? Effect.die(new Error(`Task "${handle.task}" has not finished`))

  readonly group = <A, E, R>(body: Effect.Effect<A, E, R>): Effect.Effect<GroupOutcome<A>, E, R> =>
    Effect.withFiber((fiber) => {
      const group = new Group(this, true)
      return body.pipe(
        Effect.provideService(CurrentPlace, { run: fiber.getRef(CurrentPlace)?.run, group }),
        Effect.map((value) => group.outcome(value))
      )
    })

  readonly join = Effect.void

  readonly local = <A, E, R>(key: object, acquire: Effect.Effect<A, E, R>) => this.lane.local(key, acquire, this.scope)

  readonly stats: Effect.Effect<Stats> = Effect.sync(() => this.counters.stats(0, 0))
}

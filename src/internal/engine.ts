/**
 * The operations behind the public API, which each pool implements: the
 * parallel pool, the serial pool, and the pool a task sees on a worker thread.
 *
 * @internal
 */
import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { Stats } from "./stats.ts"
import type { TaskDef } from "./taskDef.ts"

export interface Engine {
  readonly mode: "parallel" | "serial"
  readonly maxWorkers: number
  readonly submit: (
    fiber: Fiber.Fiber<unknown, unknown>,
    task: TaskDef,
    args: ReadonlyArray<unknown>
  ) => Effect.Effect<Handle<unknown, unknown>, unknown>
  readonly await: (handle: Handle<unknown, unknown>) => Effect.Effect<unknown, unknown>
  /** Runs `task` once per item, as a group; returns the results by item when `keep`. */
  readonly forEach: (
    fiber: Fiber.Fiber<unknown, unknown>,
    task: TaskDef,
    items: Items,
    keep: boolean
  ) => Effect.Effect<Array<unknown> | undefined, unknown, unknown>
  /** Runs `body` as a group; keeps the successes of the tasks in `collect`. */
  readonly group: <A, E, R>(body: Effect.Effect<A, E, R>, collect: Collect) => Effect.Effect<GroupOutcome<A>, E, R>
  readonly join: Effect.Effect<void>
  readonly local: <A, E, R>(key: object, acquire: Effect.Effect<A, E, R>) => Effect.Effect<A, E, Exclude<R, Scope.Scope>>
  readonly stats: Effect.Effect<Stats>
  /** Completes once the pool has closed: every task has finished. */
  readonly closed: Effect.Effect<void>
  /** Runs `reporter` beside the pool; the pool's close waits for it to end (after `closed`). */
  readonly watch: (reporter: Effect.Effect<void>) => Effect.Effect<void>
}

/** The items of a `Task.forEach`. */
export type Items = Iterable<unknown> | Stream.Stream<unknown, unknown, unknown>

/** The tasks whose successes a group keeps, or `undefined` for none. */
export type Collect = ReadonlySet<TaskDef> | undefined

/** A finished group: the body's value and the successes of the collected tasks, by task. */
export interface GroupOutcome<A> {
  readonly value: A
  readonly successesOf: (task: TaskDef) => ReadonlyArray<unknown>
}

/** A handle's phantom types. */
export interface Handle<out A, out E = never> {
  readonly task: string
  readonly [HandleKey]: { readonly _A: (_: never) => A; readonly _E: (_: never) => E }
}

/** The key that marks a value as a handle. */
export const HandleKey: unique symbol = Symbol.for("effect-lateral/Task/Handle")

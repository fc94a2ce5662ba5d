/**
 * Worker-local resources: pylateral's per-thread factory cache.
 *
 * `WorkerLocal.make(acquire)` declares a resource that the pool keeps
 * instances of. The first task that needs one acquires it; a task holds its
 * instance until it ends, and then the instance serves the next task that
 * asks; the pool releases them all when it closes, after every task. So an
 * instance is never used by two tasks at once, not even while one of them
 * waits on the pool: the place for a client that is not safe to share, such
 * as a database connection.
 *
 * Tasks that do not wait on the pool while they hold an instance need at most
 * one per lane (`maxWorkers: n`, at most `n`, plus one for code that uses it
 * outside any task). A task that waits (`Task.await`, `Task.group`,
 * `TaskPool.join`) keeps its own, and the tasks it waits for use others.
 * Under `TaskPool.serial`, there is exactly one. On a worker thread, instances
 * live on that thread and serve the tasks that run there.
 *
 * For one instance shared by the whole process (pylateral's
 * `cache_result(scope=PROCESS)`), use an ordinary `Layer` or `Effect.cached`.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { TaskPool } from "./TaskPool.ts"

/**
 * An effect that returns the current task's instance of a resource.
 *
 * @category models
 * @since 0.1.0
 */
export interface WorkerLocal<A, E = never, R = never> extends Effect.Effect<A, E, R | TaskPool> {}

/**
 * Declares a worker-local resource. `acquire` may use `Scope` to register its
 * release (`Effect.acquireRelease`); the release runs when the pool closes.
 * An acquisition can be interrupted (a task's timeout): what it had acquired
 * is released at once, and the next use tries again, as after a failure.
 * Declare it once, at module level: each `make` is a separate resource.
 *
 * **Example** (One connection per lane)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DatabaseSync } from "node:sqlite"
 * import { Task, WorkerLocal } from "effect-lateral"
 *
 * const connection = WorkerLocal.make(
 *   Effect.acquireRelease(
 *     Effect.sync(() => new DatabaseSync("app.db")),
 *     (db) => Effect.sync(() => db.close())
 *   )
 * )
 *
 * const save = Task.make("save", (id: number) =>
 *   Effect.gen(function*() {
 *     const db = yield* connection
 *     db.prepare("INSERT OR IGNORE INTO items (id) VALUES (?)").run(id)
 *   }))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <A, E, R>(acquire: Effect.Effect<A, E, R>): WorkerLocal<A, E, Exclude<R, Scope.Scope>> => {
  const key = {}
  return TaskPool.use((pool) => pool.local(key, acquire))
}

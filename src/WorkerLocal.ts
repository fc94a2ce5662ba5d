/**
 * Worker-local resources: pylateral's per-thread factory cache.
 *
 * `WorkerLocal.make(acquire)` declares a resource that the pool keeps one
 * instance of per lane. The first task to use it on a lane acquires it; every
 * later task on that lane gets the same instance; the pool releases them all
 * when it closes. A lane runs one task at a time, so an instance is never used
 * by two running tasks at once: the place for a client that is not safe to
 * share, such as a database connection.
 *
 * With `maxWorkers: n` there are at most `n` instances (plus one for code
 * that uses it outside any task); under `TaskPool.serial`, exactly one.
 *
 * A task that waits on the pool (`Task.await`, `Task.group`, `TaskPool.join`)
 * lends its lane to other tasks meanwhile, and gets the same lane back: do not
 * leave a transaction open across such a wait.
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
 * An effect that returns the current lane's instance of a resource.
 *
 * @category models
 * @since 0.1.0
 */
export interface WorkerLocal<A, E = never, R = never> extends Effect.Effect<A, E, R | TaskPool> {}

/**
 * Declares a worker-local resource. `acquire` may use `Scope` to register its
 * release (`Effect.acquireRelease`); it runs in the pool's scope. Declare it
 * once, at module level: each `make` is a separate resource.
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

/**
 * The `TaskPool` service tag, on its own so that what runs on a worker thread
 * needs none of the pools' layers.
 *
 * @internal
 */
import * as Context from "effect/Context"
import type { Engine } from "./engine.ts"

/**
 * The pool service. Programs rarely touch it directly: calling a task,
 * `Task.group`, `Task.await`, `TaskPool.join` and `WorkerLocal` all use the
 * pool found in the context.
 */
export class TaskPool extends Context.Service<TaskPool, Engine>()("effect-lateral/TaskPool") {}

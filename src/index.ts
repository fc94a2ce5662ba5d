/**
 * effect-lateral: simple concurrent task processing for Effect programs.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Task from "./Task.ts"

/** @since 0.1.0 */
export * as TaskError from "./TaskError.ts"

/** @since 0.2.0 */
export * as TaskMetrics from "./TaskMetrics.ts"

/** @since 0.1.0 */
export * as TaskPool from "./TaskPool.ts"

/** @since 0.1.0 */
export * as WorkerLocal from "./WorkerLocal.ts"

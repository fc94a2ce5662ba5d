/**
 * The seam where a portable task's attempt leaves the calling thread: for the
 * pool's worker threads today, and for other places (remote runners) alike.
 * The pool decides when a run starts, what it waits for and what its failure
 * means; an executor only runs attempts.
 *
 * @internal
 */
import type * as Effect from "effect/Effect"
import type { Run } from "./run.ts"

export interface Executor {
  /**
   * Waits until the executor can take attempts (the first thread has
   * started): a task's timeout counts from there, not from the start-up.
   */
  readonly ready: Effect.Effect<void>
  /**
   * One attempt of a portable run; interrupting it stops the attempt where it
   * runs. The executor calls `release` once the attempt no longer needs the
   * run's lane (it waits elsewhere, in a bound of the executor's own).
   */
  readonly attempt: (run: Run, release: () => void) => Effect.Effect<unknown, unknown>
  /** Worker threads alive now, for `TaskPool.stats`. */
  readonly threads: () => number
}

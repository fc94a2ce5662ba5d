/**
 * A pool's counters, as `TaskPool.stats` reports them.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Exit from "effect/Exit"

export interface Stats {
  readonly submitted: number
  readonly succeeded: number
  readonly failed: number
  readonly interrupted: number
  readonly running: number
  readonly queued: number
  /** Worker threads alive now (they start with the first portable task). */
  readonly threads: number
}

/** The counters every pool keeps. */
export class Counters {
  submitted = 0
  succeeded = 0
  failed = 0
  interrupted = 0
  running = 0

  /** Counts a finished run; returns its cause if it failed (an interruption is not a failure). */
  finished(exit: Exit.Exit<unknown, unknown>): Cause.Cause<unknown> | undefined {
    if (exit._tag === "Success") {
      this.succeeded++
      return undefined
    }
    if (Cause.hasInterruptsOnly(exit.cause)) {
      this.interrupted++
      return undefined
    }
    this.failed++
    return exit.cause
  }

  stats(queued: number, threads: number): Stats {
    return {
      submitted: this.submitted,
      succeeded: this.succeeded,
      failed: this.failed,
      interrupted: this.interrupted,
      running: this.running,
      queued,
      threads
    }
  }
}

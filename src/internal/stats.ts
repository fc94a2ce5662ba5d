/**
 * A pool's counters, as `TaskPool.stats` reports them.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Exit from "effect/Exit"
import type { TaskDef } from "./taskDef.ts"

/** One task's counters in a pool. */
export interface TaskStats {
  readonly submitted: number
  readonly succeeded: number
  readonly failed: number
  readonly interrupted: number
  readonly running: number
  readonly queued: number
}

export interface Stats extends TaskStats {
  /** Worker threads alive now (they start with the first portable task). */
  readonly threads: number
  /** The same counters by task name, for every task the pool has run. */
  readonly byTask: Readonly<Record<string, TaskStats>>
}

/** Counters of runs: the pool's, and each task's. */
class RunCounts implements TaskStats {
  submitted = 0
  succeeded = 0
  failed = 0
  interrupted = 0
  running = 0
  queued = 0
}

/**
 * The counters every pool keeps, in all and by task name (two tasks of one
 * name, in different modules, are one row). The pools call these at each step
 * of a run; a loop submits one task over and over, so that task's counters
 * are kept at hand.
 */
export class Counters extends RunCounts {
  private readonly tasks = new Map<string, RunCounts>()
  private lastTask: TaskDef | undefined = undefined
  private lastCounts: RunCounts | undefined = undefined

  private of(task: TaskDef): RunCounts {
    if (task === this.lastTask) return this.lastCounts!
    let counts = this.tasks.get(task.name)
    if (counts === undefined) this.tasks.set(task.name, counts = new RunCounts())
    this.lastTask = task
    this.lastCounts = counts
    return counts
  }

  submit(task: TaskDef): void {
    this.submitted++
    this.of(task).submitted++
  }

  /** A run of `task` waits for a lane (+1) or leaves the queue (-1). */
  queue(task: TaskDef, change: 1 | -1): void {
    this.queued += change
    this.of(task).queued += change
  }

  start(task: TaskDef): void {
    this.running++
    this.of(task).running++
  }

  /**
   * Counts a finished run (one that ran, unless `started` is false: dropped
   * from the queue); returns its cause if it failed (an interruption is not a
   * failure).
   */
  finished(task: TaskDef, exit: Exit.Exit<unknown, unknown>, started: boolean): Cause.Cause<unknown> | undefined {
    const counts = this.of(task)
    if (started) {
      this.running--
      counts.running--
    }
    if (exit._tag === "Success") {
      this.succeeded++
      counts.succeeded++
      return undefined
    }
    if (Cause.hasInterruptsOnly(exit.cause)) {
      this.interrupted++
      counts.interrupted++
      return undefined
    }
    this.failed++
    counts.failed++
    return exit.cause
  }

  stats(threads: number): Stats {
    const byTask: Record<string, TaskStats> = {}
    for (const [name, counts] of this.tasks) byTask[name] = { ...counts }
    return {
      submitted: this.submitted,
      succeeded: this.succeeded,
      failed: this.failed,
      interrupted: this.interrupted,
      running: this.running,
      queued: this.queued,
      threads,
      byTask
    }
  }
}

/**
 * A failure scope: the tasks submitted inside one `Task.group` body (and their
 * descendants), or, for a pool's root group, every task submitted outside any
 * group. The first failure of a group's task fails the group.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import type { Collect, Engine, GroupOutcome } from "./engine.ts"
import type { TaskDef } from "./taskDef.ts"
import type { Waiters } from "./waiters.ts"
import type { WireResults } from "./wire.ts"

/** A run, as its group's list of suspended runs links it. */
export interface Linked<R> {
  prev: R | undefined
  next: R | undefined
}

/**
 * `pending` counts every unfinished run of the group; the intrusive list
 * (`first`/`last`) holds only the suspended ones, so that a run that finishes
 * synchronously never touches it.
 */
export class Group<R extends Linked<R>> {
  /** The pool the group belongs to. */
  readonly owner: Engine
  /** The group's id for worker threads (0 until one needs it). */
  id = 0
  pending = 0
  failure: Cause.Cause<unknown> | undefined = undefined
  /** The task whose failure `failure` is, so that it can be encoded for a worker thread. */
  failedTask: TaskDef | undefined = undefined
  first: R | undefined = undefined
  last: R | undefined = undefined
  /** Woken when `pending` reaches 0 or the group fails. */
  readonly waiters: Waiters = []
  /** Interrupts the group's body (a fiber here, or on a worker thread) when the group fails. */
  interruptBody: (() => void) | undefined = undefined
  closed = false
  /** Set once the group's body failed or was interrupted: its tasks are being stopped. */
  stopping = false
  /** A `Task.forEach`'s results, by item, when its caller keeps them. */
  ordered: Array<unknown> | undefined = undefined
  /** The successes kept for `results`, for the tasks the program asked for. */
  private readonly successes: Map<TaskDef, Array<unknown>> | undefined

  constructor(owner: Engine, collect: Collect) {
    this.owner = owner
    this.successes = collect === undefined || collect.size === 0
      ? undefined
      : new Map([...collect].map((task) => [task, []]))
  }

  link(run: R): void {
    run.prev = this.last
    if (this.last) this.last.next = run
    else this.first = run
    this.last = run
  }

  unlink(run: R): void {
    if (run.prev) run.prev.next = run.next
    else this.first = run.next
    if (run.next) run.next.prev = run.prev
    else this.last = run.prev
    run.prev = run.next = undefined
  }

  /** The suspended runs, copied so that interrupting them may change the list. */
  suspended(): Array<R> {
    const runs: Array<R> = []
    for (let run = this.first; run; run = run.next) runs.push(run)
    return runs
  }

  /** Keeps a success if the program asked for this task's results. */
  recordSuccess(def: TaskDef, value: unknown): void {
    this.successes?.get(def)?.push(value)
  }

  /** The kept successes, encoded for a worker thread (the group's tasks are then all portable). */
  wireResults(): WireResults {
    return [...(this.successes ?? [])].map(([task, values]) =>
      [task.portable!.module, task.name, values.map((value) => task.portable!.encodeExit(Exit.succeed(value)))] as const
    )
  }

  outcome<A>(value: A): GroupOutcome<A> {
    const successes = this.successes
    return { value, successesOf: (task) => successes?.get(task) ?? [] }
  }
}

/**
 * The pool's answers to what portable tasks on worker threads ask of it:
 * submit, await, join, open and close a group, stats. A task on a thread runs
 * for a run of the pool (the "asking" run): its submissions descend from that
 * run, and its waits give that run's lane up, as they would on this thread.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { Collect } from "./engine.ts"
import { libraryCodec } from "./portable.ts"
import type * as Protocol from "./protocol.ts"
import { resolve } from "./registry.ts"
import type { Run, RunGroup } from "./run.ts"
import type { Stats } from "./stats.ts"
import type { TaskDef } from "./taskDef.ts"
import * as Telemetry from "./telemetry.ts"
import type { WireFailure } from "./wire.ts"

/** What the answers need of the pool. */
export interface AnsweringPool {
  readonly root: RunGroup
  readonly stats: Effect.Effect<Stats>
  readonly submitRun: (
    def: TaskDef,
    args: ReadonlyArray<unknown>,
    encoded: unknown,
    context: Context.Context<never>,
    group: RunGroup,
    submitter: Run | undefined
  ) => Effect.Effect<Run, unknown>
  readonly awaitRun: (run: Run, waiter: Run | undefined) => Effect.Effect<unknown, unknown>
  readonly joinChildren: (run: Run) => Effect.Effect<void>
  readonly openGroup: (collect: Collect) => RunGroup
  readonly closeGroup: (group: RunGroup) => void
  readonly settleGroup: (group: RunGroup, bodyFailed: boolean, waiter: Run | undefined) => Effect.Effect<void, unknown>
  readonly interruptRuns: (group: RunGroup) => void
  readonly failureOf: (run: Run) => readonly [Cause.Cause<unknown>, TaskDef | undefined]
}

/** What the answers need of the threads. */
export interface AskingThreads {
  /** The run whose task on a thread has the id `id`, while it runs there. */
  readonly runOf: (id: number) => Run | undefined
  /** Calls `f` once the task `id` has finished on its thread (or its thread died). */
  readonly onDispatchEnd: (id: number, f: () => void) => void
  /** Interrupts the body of group `group`, which runs for task `id` on its thread. */
  readonly interruptBody: (id: number, group: number) => void
}

export class Answers {
  private readonly pool: AnsweringPool
  private nextId = 0
  /** Groups that tasks on threads refer to, by id, and how many such tasks there are. */
  private readonly groupsById = new Map<number, RunGroup>()
  private readonly groupRefs = new Map<number, number>()
  /** Runs submitted from worker threads, by the id their handles carry. */
  private readonly remoteRuns = new Map<number, Run>()

  constructor(pool: AnsweringPool) {
    this.pool = pool
  }

  /**
   * The id threads know `group` by (0 for the pool's root group), for as long
   * as a task on a thread may refer to it: until `releaseGroup`.
   */
  groupId(group: RunGroup): number {
    if (group === this.pool.root) return 0
    if (group.id === 0) group.id = ++this.nextId
    const refs = this.groupRefs.get(group.id)
    if (refs === undefined) {
      this.groupsById.set(group.id, group)
      this.groupRefs.set(group.id, 1)
    } else this.groupRefs.set(group.id, refs + 1)
    return group.id
  }

  /** A task on a thread that referred to group `id` has ended. */
  releaseGroup(id: number): void {
    const refs = this.groupRefs.get(id)
    if (refs === undefined) return
    if (refs > 1) return void this.groupRefs.set(id, refs - 1)
    this.groupRefs.delete(id)
    this.groupsById.delete(id)
  }

  /** The group threads know by `id`, while it is open. */
  private groupById(id: number): RunGroup | undefined {
    const group = this.groupsById.get(id)
    return group?.closed ? undefined : group
  }

  answer(question: Protocol.Question, threads: AskingThreads): Effect.Effect<Protocol.WireReply> {
    const pool = this.pool
    if (question._tag === "stats") return Effect.map(pool.stats, (stats): Protocol.WireReply => [0, stats])
    const asking = threads.runOf(question.parent)
    // The asking task has ended meanwhile (interrupted, or its thread died): nothing to answer.
    if (asking === undefined) return answered(Effect.interrupt, () => undefined)
    switch (question._tag) {
      case "submit": {
        const group = question.group === 0 ? asking.group : this.groupById(question.group) ?? asking.group
        const submitted = resolve(question.module, question.name).pipe(
          Effect.flatMap((def) => pool.submitRun(def, [], question.payload, Telemetry.submitterContext(asking), group, asking)),
          Effect.map((run) => {
            const id = ++this.nextId
            this.remoteRuns.set(id, run)
            threads.onDispatchEnd(question.parent, () => this.remoteRuns.delete(id))
            return id
          })
        )
        // Raised in `submitRun`'s order: the pool's failure first, then the group's.
        return answered(submitted, () => pool.root.failure ? pool.root.failedTask : group.failedTask)
      }
      case "await": {
        const run = this.remoteRuns.get(question.run)
        if (run === undefined) return answered(Effect.die(new Error("Task.await: this handle's task is gone")), () => undefined)
        const awaited = Effect.map(pool.awaitRun(run, asking), (value) => run.def.portable!.encodeExit(Exit.succeed(value)))
        return answered(awaited, () => pool.failureOf(run)[1])
      }
      case "join":
        return answered(pool.joinChildren(asking), () => pool.root.failedTask)
      case "openGroup": {
        const opened = Effect.map(
          Effect.forEach(question.collect, ([module, name]) => resolve(module, name)),
          (defs) => {
            const group = pool.openGroup(defs.length === 0 ? undefined : new Set(defs))
            const id = this.groupId(group)
            group.interruptBody = () => threads.interruptBody(question.parent, id)
            // A task that ends without closing its group (its thread died) leaves nothing running.
            threads.onDispatchEnd(question.parent, () => {
              if (group.closed) return
              pool.interruptRuns(group)
              pool.closeGroup(group)
              this.releaseGroup(id)
            })
            return id
          }
        )
        return answered(opened, () => undefined)
      }
      case "closeGroup": {
        const group = this.groupById(question.group)
        if (group === undefined) return Effect.succeed([0, []])
        const bodyFailed = question.bodyFailed && group.failure === undefined
        const settled = pool.settleGroup(group, bodyFailed, asking).pipe(
          Effect.map(() => group.wireResults()),
          // Interrupted (the asking thread died): nothing of the group may go on.
          Effect.onInterrupt(() => Effect.sync(() => pool.interruptRuns(group))),
          Effect.ensuring(Effect.sync(() => {
            if (group.closed) return
            pool.closeGroup(group)
            this.releaseGroup(group.id)
          }))
        )
        return answered(settled, () => group.failedTask)
      }
    }
  }
}

/** An answer on the wire; a failure goes back encoded with the schemas of the task it is a failure of. */
const answered = (reply: Effect.Effect<unknown, unknown>, failedTask: () => TaskDef | undefined): Effect.Effect<Protocol.WireReply> =>
  Effect.matchCause(reply, {
    onSuccess: (value): Protocol.WireReply => [0, value],
    onFailure: (cause): Protocol.WireReply => [1, wireFailure(cause, failedTask())]
  })

const wireFailure = (cause: Cause.Cause<unknown>, task: TaskDef | undefined): WireFailure => {
  const exit = Exit.failCause(cause)
  return task?.portable
    ? [task.portable.module, task.name, task.portable.encodeExit(exit)]
    : ["", "", libraryCodec.encodeExit(exit)]
}

/**
 * Worker-local instances: the values of `WorkerLocal.make` and a portable
 * task's `layer`.
 *
 * A task holds the instance it uses from its first use until it ends, so that
 * no two tasks use one instance at once, not even across the waits where a
 * task gives its lane up. A finished task's instances go back to be reused by
 * the next task that asks. So there are as many instances as tasks that held
 * one at the same time: at most one per lane for tasks that do not wait on the
 * pool while they hold one. All are released when the pool closes.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"

/** What holds instances: a task, or the code around the tasks. */
export interface Holder {
  locals: Map<object, Held> | undefined
}

/** One instance in a holder's hands, or its acquisition under way. */
interface Held {
  readonly deferred: Deferred.Deferred<unknown, unknown>
  value: unknown
  acquired: boolean
}

export class LocalInstances {
  private readonly scope: Scope.Scope
  /** Instances that finished tasks gave back, by key. */
  private readonly idle = new Map<object, Array<unknown>>()

  /** Instances are acquired in scopes forked from `scope`; closing it releases them all. */
  constructor(scope: Scope.Scope) {
    this.scope = scope
  }

  /**
   * The holder's instance of `key`: the one it holds, an idle one, or a new
   * one from `acquire`. An acquisition can be interrupted; what it had
   * acquired is then released, and a failed one is not kept.
   */
  get<A, E, R>(holder: Holder, key: object, acquire: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, Scope.Scope>> {
    return Effect.suspend(() => {
      const locals = holder.locals ??= new Map()
      const found = locals.get(key)
      if (found !== undefined) return Deferred.await(found.deferred) as Effect.Effect<A, E>
      const held: Held = { deferred: Deferred.makeUnsafe(), value: undefined, acquired: false }
      locals.set(key, held)
      const idle = this.idle.get(key)
      if (idle !== undefined && idle.length > 0) {
        held.value = idle.pop()
        held.acquired = true
        Deferred.doneUnsafe(held.deferred, Exit.succeed(held.value))
        return Effect.succeed(held.value as A)
      }
      return Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(Scope.fork(this.scope), (scope) =>
          restore(acquire).pipe(
            Scope.provide(scope),
            Effect.onExit((exit) => {
              Deferred.doneUnsafe(held.deferred, exit)
              if (exit._tag === "Success") {
                held.value = exit.value
                held.acquired = true
                return Effect.void
              }
              // Not kept: the next use tries again.
              if (locals.get(key) === held) locals.delete(key)
              return Scope.close(scope, exit)
            })
          )
        )
      ) as Effect.Effect<A, E, Exclude<R, Scope.Scope>>
    })
  }

  /** A holder has ended: its instances are free for the next task. */
  release(holder: Holder): void {
    const locals = holder.locals
    if (locals === undefined) return
    holder.locals = undefined
    for (const [key, held] of locals) {
      if (!held.acquired) continue
      const idle = this.idle.get(key)
      if (idle === undefined) this.idle.set(key, [held.value])
      else idle.push(held.value)
    }
  }
}

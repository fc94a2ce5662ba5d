/**
 * The submitting side of `TaskRunner`: runs one attempt of a portable task
 * on the cluster and returns its exit, decoded with the task's schemas. This
 * is what a pool's executor calls for each attempt of a portable run; the
 * pool keeps its own semantics (groups, fail-fast, timeout, retry) around it.
 *
 * - Routing: an attempt goes to the entity named by its routing key, or else
 *   to one of `slots` entity ids in turn; an entity id maps to a shard of the
 *   deploy, and a shard to the runner that holds it. Tasks with the same key
 *   run on the same runner while it lives.
 * - Interruption: interrupting the returned effect interrupts the attempt on
 *   its runner (the cluster client sends an interrupt for the request). An
 *   attempt its runner interrupted on its own (it was shutting down: a
 *   volatile request is then answered with an interruption) is sent again,
 *   with the same id, to the shard's next owner.
 * - Failures of the cluster itself (storage down, a full mailbox) are defects
 *   of the attempt, naming the task: a task's `retry` schedule sees them.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Schema from "effect/Schema"
import type { Sharding } from "effect/cluster/Sharding"
import type { PortableTaskDef } from "../registry.ts"
import type { WireExit } from "../wire.ts"
import type { Attempt, TaskRunner } from "./entity.ts"
import type { ModuleNames } from "./modules.ts"

export type Delivery = "durable" | "volatile"

export interface ClientOptions {
  readonly entity: TaskRunner
  readonly modules: ModuleNames
  /** "durable" (persisted, deduplicated by attempt id) or "volatile" (sent straight to the runner). */
  readonly delivery: Delivery
  /** How many entity ids attempts without a routing key are spread over (they map to shards, then runners). */
  readonly slots: number
}

export interface RemoteAttempt {
  readonly def: PortableTaskDef
  /** The task's argument, encoded by `def.portable.json.encodePayload`. */
  readonly payload: Schema.Json
  /** Unique per attempt: a retry needs a new id, or a durable request gets the first attempt's reply. */
  readonly id: string
  /** Routing key: attempts with the same key go to the same entity, so to the same runner. */
  readonly key?: string | undefined
}

/** Runs one attempt remotely; the effect never fails: the attempt's outcome is the exit. */
export type Send = (attempt: RemoteAttempt) => Effect.Effect<Exit.Exit<unknown, unknown>>

/**
 * The function that runs one attempt remotely. Its effect never fails: the
 * attempt's outcome, whatever it is, is the exit it returns.
 *
 * **Example** (One attempt of a task)
 *
 * ```ts
 * const attempt = yield* Client.make({ entity, modules, delivery: "durable", slots: 128 })
 * const payload = def.portable.json.encodePayload(value) // a Result: fail the submit on failure
 * const exit = yield* attempt({ def, payload: payload.success, id: `${runId}/${n}` })
 * ```
 */
export const make = (options: ClientOptions): Effect.Effect<Send, never, Sharding> =>
  Effect.map(options.entity.client, (clientFor) => {
    const slotClients = Array.from({ length: options.slots }, (_, slot) => clientFor(`slot-${slot}`))
    const durable = options.delivery === "durable"
    let next = 0
    return (attempt) =>
      Effect.suspend(() => {
        const { def } = attempt
        let module: string
        try {
          module = options.modules.relative(def.portable.module)
        } catch (error) {
          return Effect.succeed(Exit.die(error))
        }
        const client = attempt.key === undefined ? slotClients[next++ % options.slots]! : clientFor(attempt.key)
        const request: Attempt = { id: attempt.id, module, name: def.name, payload: attempt.payload }
        const call: Effect.Effect<Schema.Json, unknown> = durable ? client.RunDurable(request) : client.Run(request)
        // Runs only while this fiber is not interrupted: an interruption seen here came from the runner.
        const send: Effect.Effect<Exit.Exit<unknown, unknown>> = Effect.matchCauseEffect(call, {
          onSuccess: (wire) => Effect.succeed(decode(def, wire)),
          onFailure: (cause) =>
            Cause.hasInterruptsOnly(cause)
              ? Effect.andThen(Effect.sleep(resendDelay), send)
              : Effect.succeed(undeliverable(def, cause))
        })
        return send
      })
  })

/**
 * Completes once a runner of the deploy has answered a ping: the cluster has
 * a runner, and this client has read which runner holds which shard. Until
 * then a durable request would be stored but notified to no runner, and wait
 * for a runner's next storage poll (`entityMessagePollInterval`, 10 s by
 * default). A failed ping (storage down, a full mailbox) is sent again.
 */
export const reachable = (entity: TaskRunner): Effect.Effect<void, never, Sharding> =>
  Effect.flatMap(entity.client, (clientFor) => {
    const ping: Effect.Effect<void> = Effect.catchCause(
      clientFor("ping").Ping(),
      () => Effect.andThen(Effect.sleep(resendDelay), ping)
    )
    return ping
  })

/** How long to wait before sending again an attempt its runner interrupted: the runner is leaving. */
const resendDelay = "100 millis"

/** The runner's answer, decoded with the task's schemas (a value it cannot decode is a defect). */
const decode = (def: PortableTaskDef, wire: Schema.Json): Exit.Exit<unknown, unknown> => {
  try {
    return def.portable.json.decodeExit(wire as unknown as WireExit)
  } catch (error) {
    return Exit.die(new Error(`Task "${def.name}": cannot decode the runner's answer: ${String(error)}`, { cause: error }))
  }
}

/** The call itself failed: the cluster's errors become a defect that names the task; its defects stay as they are. */
const undeliverable = (def: PortableTaskDef, cause: Cause.Cause<unknown>): Exit.Exit<unknown, unknown> => {
  const error = Cause.findErrorOption(cause)
  if (error._tag === "None") return Exit.failCause(cause)
  return Exit.die(new Error(`Task "${def.name}": the cluster could not run it: ${String(error.value)}`, { cause: error.value }))
}

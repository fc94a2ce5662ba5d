/**
 * The one entity runners serve: `TaskRunner`. Its RPC runs one attempt of a
 * portable task, named by its module (relative to the cluster's root) and
 * its name, on a payload in JSON form (`Schema.toCodecJson` of the task's
 * payload schema), and answers with the attempt's exit in the same form.
 *
 * The RPC comes twice, for the two deliveries:
 *
 * - `Run`, volatile: sent straight to the runner that owns the entity's
 *   shard; nothing is stored. If that runner goes away, the sender's cluster
 *   client sends it again to the shard's next owner.
 * - `RunDurable`, persisted: saved in the message storage before delivery,
 *   answered through it, and read again by a shard's next owner if its runner
 *   dies. Its `id` is the primary key: sending the same id again (say, after
 *   the submitter restarted) gets the first reply instead of a second run.
 *
 * Both are at-least-once: a runner that dies mid-task leaves the task to run
 * again elsewhere. `Ping` tells a client that the cluster can take requests.
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import * as ClusterSchema from "effect/cluster/ClusterSchema"
import * as Entity from "effect/cluster/Entity"
import * as Rpc from "effect/rpc/Rpc"
import type { Deploy } from "./deploy.ts"

/** What a request names: one attempt of one task. */
export const AttemptFields = {
  /** Unique per attempt (a retry is a new attempt); the durable RPC's primary key. */
  id: Schema.String,
  /** The task's module, relative to the cluster's root. */
  module: Schema.String,
  /** The task's name in its module. */
  name: Schema.String,
  /** The task's one argument, encoded by `Schema.toCodecJson` of its payload schema. */
  payload: Schema.Json
}

/** The attempt's exit, a `WireExit` whose values are encoded by `Schema.toCodecJson`. */
const EncodedExit = Schema.Json

export const Run = Rpc.make("Run", { payload: AttemptFields, success: EncodedExit })

export const RunDurable = Rpc.make("RunDurable", {
  payload: AttemptFields,
  success: EncodedExit,
  primaryKey: ({ id }) => id
}).annotate(ClusterSchema.Persisted, true)

/**
 * Answered by any runner, volatile: a client whose ping came back knows which
 * runner holds which shard. (A durable request sent before that is stored
 * but notified to no runner: it waits for a runner's next storage poll.)
 */
export const Ping = Rpc.make("Ping")

/** The entity's type name, the same for every deploy (the shard group tells deploys apart). */
export const entityType = "effect-lateral/TaskRunner"

/** The entity of one deploy: its entity ids map to that deploy's shard group. */
export const taskRunner = (deploy: Deploy) =>
  Entity.make(entityType, [Run, RunDurable, Ping]).annotate(ClusterSchema.ShardGroup, () => deploy.name)

export type TaskRunner = ReturnType<typeof taskRunner>

/** One attempt, as a request carries it. */
export type Attempt = Schema.Struct<typeof AttemptFields>["Type"]

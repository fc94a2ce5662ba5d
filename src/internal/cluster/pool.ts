/**
 * The submitting side of a cluster, as a pool: the parallel pool of
 * `parallel.ts`, whose portable tasks' attempts go to the cluster's runners
 * through `Client` instead of to worker threads. Everything else (lanes,
 * groups, fail-fast, `join`, timeout and retry, stats) is the pool's own, so
 * it behaves as `TaskPool.layer` does; in-process tasks run on its lanes.
 *
 * - Payloads are encoded at submit in their JSON form (`Portable.json`): a
 *   payload the JSON codec refuses fails the submit with `TaskPayloadError`.
 * - Each attempt has its own id (`<pool>/<run>/<attempt>`): a retry is a new
 *   request, which durable delivery would otherwise answer with the first
 *   attempt's stored reply. The cluster's own resends keep the id.
 * - A run holds its lane while its attempt is away, so `maxWorkers` bounds
 *   the attempts in flight.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { Sharding as ShardingService } from "effect/cluster/Sharding"
import type { SqlError } from "effect/sql/SqlError"
import type { ClusterOptions } from "./options.ts"
import type { Engine } from "../engine.ts"
import type { Executor } from "../executor.ts"
import * as Parallel from "../parallel.ts"
import type { PortableTaskDef } from "../registry.ts"
import { TaskPool } from "../service.ts"
import type { TaskDef } from "../taskDef.ts"
import * as Client from "./client.ts"
import * as Deploy from "./deploy.ts"
import { taskRunner } from "./entity.ts"
import * as Modules from "./modules.ts"
import * as Sharding from "./sharding.ts"

export interface PoolSettings {
  readonly pool: Parallel.ParallelOptions
  readonly deploy: Deploy.Deploy
  readonly modules: Modules.ModuleNames
  readonly delivery: Client.Delivery
  readonly key: ClusterOptions["key"]
}

/**
 * How many entity ids attempts without a routing key are spread over, in
 * turn. Each maps to one of the deploy's shards (300 by default), so to a
 * runner: enough to spread over many runners, few enough to keep the
 * cluster's per-entity state small.
 */
const slots = 128

/** The pool, on the `Sharding` in context (a client of the cluster, or an in-memory one in tests). */
export const make = (settings: PoolSettings): Effect.Effect<Engine, never, Scope.Scope | ShardingService> =>
  Parallel.make(settings.pool, {
    executor: Effect.gen(function*() {
      const entity = taskRunner(settings.deploy)
      const send = yield* Client.make({ entity, modules: settings.modules, delivery: settings.delivery, slots })
      // Attempts wait until a runner has answered (a task's timeout counts from there).
      const reachable = yield* Effect.forkScoped(Client.reachable(entity))
      return executor(send, Fiber.join(reachable), settings.key)
    }),
    encode: encodeJson
  })

/** `TaskPool.layerCluster`: the pool, on a client of the cluster that `options` describe. */
export const layer = (options: ClusterOptions, pool: Parallel.ParallelOptions): Layer.Layer<TaskPool, SqlError> =>
  Layer.unwrap(Effect.gen(function*() {
    const settings = yield* check(options, pool)
    // The client is built first, so that it is released after the pool's final wait.
    return Layer.effect(TaskPool, make(settings)).pipe(
      Layer.provide(Sharding.client({ deploy: settings.deploy, db: options.db, sharding: options.sharding }))
    )
  }))

/** The cluster's options, checked: a bad one is a defect that names it and its value. */
const check = (options: ClusterOptions, pool: Parallel.ParallelOptions): Effect.Effect<PoolSettings> =>
  Effect.suspend(() => {
    const refuse = (message: string) => Effect.die(new Cause.IllegalArgumentError(`TaskPool.layerCluster: ${message}`))
    const { db, delivery = "durable", key } = options
    if (typeof db !== "string" || db.length === 0) return refuse(`db must be a SQLite file or a postgres:// URL, got ${JSON.stringify(db)}`)
    if (delivery !== "durable" && delivery !== "volatile") return refuse(`delivery must be "durable" or "volatile", got ${JSON.stringify(delivery)}`)
    if (key !== undefined && typeof key !== "function") return refuse(`key must be a function, got ${typeof key}`)
    let deploy: Deploy.Deploy
    let modules: Modules.ModuleNames
    try {
      deploy = Deploy.make(options.deploy)
    } catch (error) {
      return refuse(`deploy ${JSON.stringify(options.deploy)}: ${(error as Error).message}`)
    }
    try {
      modules = Modules.make(options.root ?? ".")
    } catch (error) {
      return refuse(`root ${JSON.stringify(options.root ?? ".")} cannot be read: ${(error as Error).message}`)
    }
    return Effect.succeed({ pool, deploy, modules, delivery, key })
  })

const nothingToEncode = Result.succeed(undefined)

/** A portable task's payload in its JSON form, what a request carries. */
const encodeJson = (def: TaskDef, args: ReadonlyArray<unknown>) =>
  def.portable === undefined ? nothingToEncode : def.portable.json.encodePayload(args[0])

/** Attempts of portable runs, each sent to the cluster with an id of its own. */
const executor = (send: Client.Send, ready: Effect.Effect<void>, key: ClusterOptions["key"]): Executor => {
  const pool = crypto.randomUUID()
  let runs = 0
  return {
    ready,
    threads: () => 0,
    attempt: (run) => {
      const def = run.def as PortableTaskDef
      const payload = run.encoded as Schema.Json
      // Computed once per run: its retries go to the same entity. A key function that throws fails the run.
      const routing = key?.(def.name, run.args[0])
      const prefix = `${pool}/${runs++}/`
      let attempts = 0
      return Effect.suspend(() => Effect.flatten(send({ def, payload, id: prefix + attempts++, key: routing })))
    }
  }
}

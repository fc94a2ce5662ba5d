/**
 * The runner's side of `TaskRunner`: a request names a portable task this
 * runner serves; the handler decodes its payload, runs one attempt of it on
 * the runner's own pool (worker threads), and answers with the exit.
 *
 * The attempt is one: the task's `timeout` and `retry` are applied by the
 * submitter around the remote call, so a retry is a new request, which may
 * land on another runner. Each attempt runs as its own group of the runner's
 * pool, so a failing task fails its request, not the pool.
 *
 * A handler interrupted from outside (the submitter gave up, or the runner
 * is shutting down) ends interrupted rather than answering: a durable
 * request interrupted by shutdown then stays in storage for the shard's next
 * owner.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import type * as Schema from "effect/Schema"
import type { Sharding } from "effect/cluster/Sharding"
import { TaskPayloadError } from "../../TaskError.ts"
import type { Engine as TaskPoolService } from "../engine.ts"
import { TaskPool } from "../service.ts"
import { libraryCodec } from "../portable.ts"
import { CurrentPlace } from "../run.ts"
import { lookup, type PortableTaskDef } from "../registry.ts"
import type { TaskDef } from "../taskDef.ts"
import type { WireExit } from "../wire.ts"
import type { Attempt, TaskRunner } from "./entity.ts"
import type { ModuleNames } from "./modules.ts"

export interface HandlerOptions {
  readonly modules: ModuleNames
  /** Named in the error a request for a task this runner does not serve fails with. */
  readonly runner: string
}

/**
 * Registers the handlers of `entity` with the runner's `Sharding`; tasks run
 * on the `TaskPool` in context.
 */
export const layer = (entity: TaskRunner, options: HandlerOptions): Layer.Layer<never, never, TaskPool | Sharding> =>
  entity.toLayer(
    TaskPool.useSync((pool) => {
      const handle = ({ payload }: { readonly payload: Attempt }) => runAttempt(pool, options, payload)
      return entity.of({ Run: handle, RunDurable: handle, Ping: () => Effect.void })
    }),
    // Every request is independent: an entity id only spreads requests over the shards.
    { concurrency: "unbounded" }
  )

/** One attempt of the request's task on `pool`; the exit in JSON form. */
const runAttempt = (pool: TaskPoolService, options: HandlerOptions, request: Attempt): Effect.Effect<Schema.Json> =>
  Effect.suspend(() => {
    const def = served(options, request)
    if (def === undefined) {
      const error = new Error(
        `Runner ${options.runner} does not serve task "${request.name}" of module ${request.module}: ` +
          `it serves the portable tasks of the modules it imported at start`
      )
      return Effect.succeed(json(libraryCodec.json.encodeExit(Exit.die(error))))
    }
    const codec = def.portable.json
    let payload: unknown
    try {
      payload = codec.decodePayload(request.payload)
    } catch (error) {
      const reason = `the runner cannot decode its payload: ${String(error)}`
      return Effect.succeed(json(codec.encodeExit(Exit.fail(new TaskPayloadError({ task: def.name, reason })))))
    }
    const single = oneAttempt(def)
    const attempt = Effect.withFiber((fiber) => Effect.flatMap(pool.submit(fiber, single, [payload]), pool.await))
    return Effect.map(
      Effect.exit(pool.group(attempt, undefined)),
      (exit) => json(codec.encodeExit(Exit.map(exit, (outcome) => outcome.value)))
    ).pipe(
      // The task sees the runner's pool, outside any task, whatever fiber the cluster runs the handler in (on an
      // in-memory cluster, the sender's, with the sender's pool and place).
      Effect.provideService(TaskPool, pool),
      Effect.provideService(CurrentPlace, undefined)
    )
  })

/** The task a request names, if this runner has imported its module. */
const served = (options: HandlerOptions, request: Attempt): PortableTaskDef | undefined => {
  let url: string
  try {
    url = options.modules.url(request.module)
  } catch {
    return undefined
  }
  return lookup(url, request.name)
}

/**
 * Why a task on a runner may not submit tasks, in this version: they would
 * run on that runner's pool alone, outside the submitter's groups, its
 * failure handling, its back-pressure and its stats.
 */
const submitsRefused = "it runs on a cluster runner, and tasks on runners cannot submit tasks in this version of effect-lateral " +
  "(they would run on that runner alone, outside the submitting program's groups, failure handling and stats). " +
  "Submit the tasks from the program, or do their work inside this task"

const single = new WeakMap<TaskDef, TaskDef>()

/**
 * The task without its `timeout` and `retry` (the submitter applies them
 * around the remote call), and whose code may not submit tasks.
 */
const oneAttempt = (def: PortableTaskDef): TaskDef => {
  let once = single.get(def)
  if (once === undefined) single.set(def, once = { ...def, timeout: undefined, retry: undefined, submitsRefused })
  return once
}

/** A `WireExit` in JSON form, as the entity's schema types it. */
const json = (exit: WireExit): Schema.Json => exit as unknown as Schema.Json

/**
 * A runner: a process that serves `TaskRunner` for one deploy. At start it
 * imports its task modules (a module that cannot be imported, or declares no
 * portable task, fails the start) and starts its worker threads (so that the
 * first task it is sent does not wait for them); then it joins the cluster
 * and runs the tasks it is sent on its own pool.
 *
 * Layers are ordered so that shutdown goes the right way: the entity stops
 * first (its running attempts are interrupted; durable ones stay in storage
 * for the shards' next owners), then `Sharding` releases the shards, and the
 * pool closes last.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { SocketServerError } from "effect/socket/SocketServer"
import type { SqlError } from "effect/sql/SqlError"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import { TaskPool } from "../service.ts"
import type { RunnerOptions } from "./options.ts"
import { tasksOf } from "../registry.ts"
import * as Deploy from "./deploy.ts"
import { taskRunner } from "./entity.ts"
import * as Handlers from "./handlers.ts"
import * as Modules from "./modules.ts"
import * as Sharding from "./sharding.ts"

/** The runner described by `options`, for as long as the layer's scope lasts. */
export const layer = (
  options: RunnerOptions,
  /** `TaskPool.layer`, given by `TaskPool.runner` so that this module does not import it. */
  poolLayer: (options: { readonly threads: number | undefined; readonly maxWorkers: number | undefined; readonly warmUp: true }) => Layer.Layer<TaskPool>
): Layer.Layer<never, SocketServerError | SqlError> =>
  Layer.unwrap(Effect.gen(function*() {
    const deploy = Deploy.make(options.deploy)
    const host = options.host ?? "localhost"
    const modules = yield* Effect.try({
      try: () => Modules.make(options.root ?? "."),
      catch: (error) => new Error(`The runner's root ${options.root ?? "."} cannot be read: ${String(error)}`)
    }).pipe(Effect.orDie)
    const served = yield* Effect.forEach(options.modules, (module) => importModule(modules, module))
    yield* Effect.logInfo(
      `Runner ${host}:${options.port} of deploy "${deploy.id}" serves ` +
        served.map(({ name, tasks }) => `${name} (${tasks.join(", ")})`).join("; ")
    )
    const address = `${host}:${options.port}`
    const member = Sharding.runner({ deploy, db: options.db, sharding: options.sharding, host, port: options.port, listenHost: options.listenHost })
    return Handlers.layer(taskRunner(deploy), { modules, runner: address }).pipe(
      Layer.provide(member),
      Layer.provide(Layer.provideMerge(report(address), poolLayer({ threads: options.threads, maxWorkers: options.maxWorkers, warmUp: true })))
    )
  }))

/**
 * Logs what the runner ran once it has left the cluster (its requests have
 * ended), before its pool closes: an operator's summary, and how the demo
 * tells which runner ran how many tasks.
 */
const report = (address: string): Layer.Layer<never, never, TaskPool> =>
  Layer.effectDiscard(TaskPool.use((pool) =>
    Effect.addFinalizer(() =>
      Effect.flatMap(pool.stats, (stats) =>
        Effect.logInfo(
          `Runner ${address} ran ${stats.succeeded + stats.failed + stats.interrupted} tasks: ` +
            `${stats.succeeded} succeeded, ${stats.failed} failed, ${stats.interrupted} interrupted`
        ))
    )
  ))

/** Imports a task module given as a path or a file URL; returns its name and its tasks. */
const importModule = (modules: Modules.ModuleNames, module: string) =>
  Effect.gen(function*() {
    const url = module.startsWith("file:") ? module : pathToFileURL(Path.resolve(module)).href
    const name = yield* Effect.try({
      try: () => modules.relative(url),
      catch: (error) => new Error(`Cannot import task module ${module}: ${(error as Error).message}`)
    })
    yield* Effect.tryPromise({
      try: () => import(url),
      catch: (cause) => new Error(`Cannot import task module ${module}: ${String(cause)}`, { cause })
    })
    // The registry knows a module by its `import.meta.url`, the file's real path.
    const tasks = tasksOf(modules.url(name))
    if (tasks.length === 0) return yield* Effect.fail(new Error(`Module ${module} declares no portable task`))
    return { name, tasks }
  }).pipe(Effect.orDie)

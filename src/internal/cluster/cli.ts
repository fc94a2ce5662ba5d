/**
 * `effect-lateral runner`: starts a runner from the command line (see
 * `TaskPool.runner`). It runs until SIGTERM or SIGINT, then leaves the
 * cluster gracefully: its shards move to the other runners.
 *
 * @internal
 */
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { Command, Flag } from "effect/cli"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import { runner as runnerLayer } from "../../TaskPool.ts"
import type { ShardingSettings } from "./options.ts"

const Port = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))
const PositiveInt = Schema.Int.check(Schema.isGreaterThan(0))
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

const flags = {
  port: Flag.Int("port").pipe(
    Flag.withSchema(Port),
    Flag.withDescription("The port to serve on (env LATERAL_RUNNER_PORT)"),
    Flag.withFallbackConfig(Config.schema(Port, "LATERAL_RUNNER_PORT"))
  ),
  host: Flag.String("host").pipe(
    Flag.withDescription("The host other members reach this runner at (env LATERAL_RUNNER_HOST)"),
    Flag.withFallbackConfig(Config.String("LATERAL_RUNNER_HOST")),
    Flag.withDefault("localhost")
  ),
  listenHost: Flag.String("listen-host").pipe(
    Flag.withDescription("The interface to listen on, if not --host (say, 0.0.0.0)"),
    Flag.optional
  ),
  db: Flag.String("db").pipe(
    Flag.withDescription(
      "The cluster's storage: a SQLite file (one host) or a postgres:// URL (several; needs @effect/sql-pg) (env LATERAL_CLUSTER_DB)"
    ),
    Flag.withFallbackConfig(Config.String("LATERAL_CLUSTER_DB"))
  ),
  modules: Flag.String("module").pipe(
    Flag.withDescription("A task module to import at start; repeat for several. The runner serves their portable tasks"),
    Flag.atLeast(1)
  ),
  root: Flag.String("root").pipe(
    Flag.withDescription("The directory task modules are named relative to, on every machine (default: the current directory)"),
    Flag.withDefault(".")
  ),
  deploy: Flag.String("deploy").pipe(
    Flag.withDescription("The version of the code; runners and submitters of one deploy work together (env LATERAL_DEPLOY)"),
    Flag.withFallbackConfig(Config.String("LATERAL_DEPLOY")),
    Flag.withDefault("default")
  ),
  threads: Flag.Int("threads").pipe(
    Flag.withSchema(NonNegativeInt),
    Flag.withDescription("Worker threads that run the tasks (default: LATERAL_THREADS, or the number of cores)"),
    Flag.withFallbackConfig(Config.schema(NonNegativeInt, "LATERAL_THREADS")),
    Flag.optional
  ),
  maxWorkers: Flag.Int("max-workers").pipe(
    Flag.withSchema(PositiveInt),
    Flag.withDescription("Tasks running at once on this runner (default: LATERAL_WORKERS, or cores x 5)"),
    Flag.withFallbackConfig(Config.schema(PositiveInt, "LATERAL_WORKERS")),
    Flag.optional
  ),
  sharding: Flag.KeyValuePair("sharding").pipe(
    Flag.withDescription(
      "An effect/cluster ShardingConfig setting, e.g. --sharding shardLockExpiration=\"5 seconds\"; repeat for several. " +
        "Every member of a deploy needs the same shardsPerGroup and shardLockExpiration"
    ),
    Flag.optional
  )
}

/**
 * The settings given with `--sharding key=value`, read with
 * `effect/cluster`'s own `ShardingConfig.config`: a bad value fails with the
 * `ConfigError` that names it.
 */
const shardingSettings = (pairs: Record<string, string>): Effect.Effect<ShardingSettings, Config.ConfigError> =>
  Effect.gen(function*() {
    const config = yield* ShardingConfig.config
    const settings: Record<string, unknown> = {}
    for (const key of Object.keys(pairs)) {
      if (!(key in config)) {
        return yield* Effect.fail(new Config.ConfigError(new ConfigProvider.SourceError({ message: `--sharding: no setting named ${key}` })))
      }
      settings[key] = config[key as keyof typeof config]
    }
    return settings as ShardingSettings
  }).pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown(pairs)))

/**
 * The `runner` command.
 *
 * **Example** (Three runners on one host, one SQLite file)
 *
 * ```sh
 * npx effect-lateral runner --port 34431 --db cluster.db --module ./dist/tasks.js --threads 2
 * npx effect-lateral runner --port 34432 --db cluster.db --module ./dist/tasks.js --threads 2
 * npx effect-lateral runner --port 34433 --db cluster.db --module ./dist/tasks.js --threads 2
 * ```
 */
export const runner = Command.make("runner", flags, (options) =>
  Effect.gen(function*() {
    const sharding = yield* Option.match(options.sharding, { onNone: () => Effect.succeed(undefined), onSome: shardingSettings })
    return yield* Layer.launch(runnerLayer({
      port: options.port,
      host: options.host,
      listenHost: Option.getOrUndefined(options.listenHost),
      db: options.db,
      modules: options.modules,
      root: options.root,
      deploy: options.deploy,
      threads: Option.getOrUndefined(options.threads),
      maxWorkers: Option.getOrUndefined(options.maxWorkers),
      sharding
    }))
  })).pipe(
    Command.withDescription("Serves portable tasks to the submitters of a cluster (TaskPool.layerCluster) until SIGTERM")
  )

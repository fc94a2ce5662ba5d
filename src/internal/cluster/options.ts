/**
 * The options of `TaskPool.layerCluster` and `TaskPool.runner`, apart from
 * the code that uses them, so that the cluster's modules and `TaskPool` do
 * not import each other.
 *
 * @internal
 */
import type { ShardingConfig } from "effect/cluster/ShardingConfig"
import type * as Duration from "effect/Duration"

/**
 * Options of `layerCluster`.
 *
 * - `db`: the cluster's storage, the same as its runners': a SQLite file for
 *   one host, or a `postgres://` URL for several (needs the package
 *   `@effect/sql-pg`).
 * - `delivery`: `"durable"` (the default): each attempt is written to
 *   storage before it is sent, and its reply too; if its runner dies, the
 *   shard's next owner runs it; an attempt id sent twice runs once.
 *   `"volatile"`: attempts go straight to the runners, nothing is stored;
 *   faster, and if a runner dies this pool sends its attempts again. Both
 *   are at-least-once: a task may run twice (a runner that dies mid-task), so
 *   tasks must be idempotent.
 * - `deploy`, `root`, `sharding`: as for `runner`, and the same as the
 *   runners'. `root` (default: the current directory) is where this program
 *   names task modules from: a runner imports the module at the same path
 *   under its own root.
 * - `key`: routes attempts: tasks with the same key run on the same runner
 *   while it lives (say, a tenant, for the runner's caches). It gets the
 *   task's name and its argument; `undefined` spreads the task over the
 *   runners. A task's retries keep its key.
 * - `maxWorkers`: the most tasks running at once, in-process tasks and
 *   attempts on the runners alike (default: `defaultMaxWorkers`): the
 *   back-pressure. Raise it to keep many runners busy.
 * - `timeout`, `blockWhenSaturated`: as for `layer`.
 *
 * @category models
 * @since 0.2.0
 */
export interface ClusterOptions {
  readonly db: string
  readonly delivery?: "durable" | "volatile" | undefined
  readonly deploy?: string | undefined
  readonly root?: string | undefined
  readonly sharding?: ShardingSettings | undefined
  readonly key?: ((task: string, payload: unknown) => string | undefined) | undefined
  readonly maxWorkers?: number | undefined
  readonly timeout?: Duration.Input | undefined
  readonly blockWhenSaturated?: boolean | undefined
}

/**
 * Options of `runner`.
 *
 * - `port`, `host`: where the other members of the cluster reach this runner
 *   (`host` defaults to `localhost`); `listenHost` if it listens elsewhere
 *   (say, `0.0.0.0`).
 * - `db`: the cluster's storage, shared by the runners and submitters of a
 *   deploy: a SQLite file for one host, or a `postgres://` URL for several
 *   (needs the package `@effect/sql-pg`).
 * - `modules`: the task modules to import at start, as paths or file URLs.
 *   The runner serves the portable tasks they declare (and those of the
 *   modules they import). A module that cannot be imported, or declares no
 *   portable task, fails the start.
 * - `root`: the directory task modules are named relative to (default: the
 *   current directory). Submitters name a task's module relative to their own
 *   root, so both sides need the same layout under it, not the same paths.
 * - `deploy`: the version of the code (a release, a commit). Runners and
 *   submitters of one deploy share storage tables and shards; two deploys
 *   never run each other's tasks. Default `"default"`.
 * - `threads`, `maxWorkers`: the runner's own pool, as in `layer`. Its
 *   threads start before the runner joins the cluster.
 * - `sharding`: `effect/cluster`'s settings, for example
 *   `shardLockExpiration` (how long a dead runner's shards stay locked) and
 *   `shardLockRefreshInterval`. Every member of a deploy needs the same
 *   `shardsPerGroup` and `shardLockExpiration`.
 *
 * @category models
 * @since 0.2.0
 */
export interface RunnerOptions {
  readonly port: number
  readonly host?: string | undefined
  readonly listenHost?: string | undefined
  readonly db: string
  readonly modules: ReadonlyArray<string>
  readonly root?: string | undefined
  readonly deploy?: string | undefined
  readonly threads?: number | undefined
  readonly maxWorkers?: number | undefined
  readonly sharding?: ShardingSettings | undefined
}

/**
 * `effect/cluster`'s `ShardingConfig` settings a runner or submitter may
 * change; the shard groups and addresses follow from the other options.
 *
 * @category models
 * @since 0.2.0
 */
export type ShardingSettings = Partial<
  Omit<ShardingConfig["Service"], "availableShardGroups" | "assignedShardGroups" | "runnerAddress" | "runnerListenAddress">
>


/**
 * The demo: an extract-transform-load job like the ones pylateral was made
 * for, entirely on this machine. It serves a blog API on loopback, then runs
 * the same pipeline twice, under `TaskPool.serial` and under
 * `TaskPool.layerConfig`, into one SQLite database, and compares.
 *
 * With `--runners N`, the second run is under `TaskPool.layerCluster`
 * instead: the transform (a portable task) runs on N runner processes
 * started for the demo on loopback (see runners.ts), which are stopped when
 * it ends, and the demo tells which runner ran how many tasks.
 *
 *   npm run demo -- --help
 *   npm run demo -- --runners 3
 */
import { NodeHttpClient, NodeRuntime, NodeServices } from "@effect/platform-node"
import { Config, Console, Duration, Effect, Layer, Option, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import { TaskPool } from "effect-lateral"
import { BlogApi } from "./api.ts"
import { countRows, extractAll, prepareDatabase, type RowCounts } from "./pipeline.ts"
import * as Runners from "./runners.ts"
import { BlogClient, DatabasePath } from "./tasks.ts"

const PositiveInt = Schema.Int.check(Schema.isGreaterThan(0))
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

const flags = {
  users: Flag.Int("users").pipe(
    Flag.withSchema(PositiveInt),
    Flag.withDescription("How many users the API serves (env DEMO_USERS)"),
    Flag.withFallbackConfig(Config.schema(PositiveInt, "DEMO_USERS")),
    Flag.withDefault(40)
  ),
  posts: Flag.Int("posts").pipe(
    Flag.withSchema(PositiveInt),
    Flag.withDescription("Posts per user, 4 to a page (env DEMO_POSTS)"),
    Flag.withFallbackConfig(Config.schema(PositiveInt, "DEMO_POSTS")),
    Flag.withDefault(12)
  ),
  workers: Flag.Int("workers").pipe(
    Flag.withSchema(PositiveInt),
    Flag.withDescription("Tasks running at once in the parallel run (default: LATERAL_WORKERS, or cores x 5)"),
    Flag.optional
  ),
  threads: Flag.Int("threads").pipe(
    Flag.withSchema(NonNegativeInt),
    Flag.withDescription("Worker threads for the transform (default: LATERAL_THREADS, or min(workers, cores))"),
    Flag.optional
  ),
  db: Flag.String("db").pipe(
    Flag.withDescription("The SQLite database to load into (env DEMO_DB)"),
    Flag.withFallbackConfig(Config.String("DEMO_DB")),
    Flag.withDefault("lateral-demo.db")
  ),
  runners: Flag.Int("runners").pipe(
    Flag.withSchema(NonNegativeInt),
    Flag.withDescription("Run the transform on this many local runner processes (a cluster on loopback, TaskPool.layerCluster)"),
    Flag.withDefault(0)
  )
}

interface Run {
  readonly seconds: number
  readonly rows: RowCounts
  readonly maxWorkers: number
  /** The pool's counters when it closed. */
  readonly last: TaskPool.Progress | undefined
}

/**
 * Progress, from the pool's own counters: a live line on a terminal, a log
 * line every few seconds otherwise. Returns the last sample, taken once every
 * task has finished.
 */
const showProgress = (label: string) => {
  const live = process.stdout.isTTY === true
  let last: TaskPool.Progress | undefined
  const report = TaskPool.onProgress(live ? "100 millis" : "3 seconds", (p) => {
    last = p
    const line = `${label}: ${p.finished}/${p.submitted} tasks done, ${p.failed} failed, ${p.running} in flight, ` +
      `${p.rate.toFixed(0)} tasks/s, ${Duration.toSeconds(p.elapsed).toFixed(1)} s`
    if (live) return Effect.sync(() => process.stdout.write(`\r${line.padEnd(100)}`))
    return p.submitted === 0 ? Effect.void : Console.log(line)
  })
  return { report, last: () => last }
}

const runPipeline = (label: string, pool: Layer.Layer<TaskPool.TaskPool, unknown>, path: string) =>
  Effect.gen(function*() {
    const started = Date.now()
    const progress = showProgress(label)
    const maxWorkers = yield* Effect.gen(function*() {
      yield* progress.report
      yield* extractAll
      return (yield* TaskPool.TaskPool).maxWorkers
    }).pipe(Effect.provide(pool))
    if (process.stdout.isTTY) yield* Effect.sync(() => process.stdout.write("\n"))
    const seconds = (Date.now() - started) / 1000
    return { seconds, rows: yield* countRows(path), maxWorkers, last: progress.last() } satisfies Run
  })

/** The API on loopback, a client for it, and the database path. */
const services = (options: { readonly users: number; readonly posts: number; readonly db: string }) =>
  Layer.mergeAll(
    Layer.unwrap(BlogApi.useSync((api) => BlogClient.layer(api.url))),
    Layer.succeed(DatabasePath, options.db)
  ).pipe(
    Layer.provideMerge(BlogApi.layer({ users: options.users, postsPerUser: options.posts, unavailable: 0.05 })),
    Layer.provideMerge(NodeHttpClient.layerUndici)
  )

const demo = Command.make("demo", flags, (options) =>
  Effect.gen(function*() {
    const api = yield* BlogApi
    const maxWorkers = Option.getOrUndefined(options.workers)
    // Started before the serial run, so that they have joined the cluster by the parallel one.
    const cluster = options.runners > 0 ? yield* Runners.start(options.runners) : undefined
    const pool = cluster === undefined
      ? TaskPool.layerConfig({ maxWorkers, threads: Option.getOrUndefined(options.threads) })
      : TaskPool.layerCluster({ ...cluster.options, maxWorkers })
    yield* prepareDatabase(options.db)
    if (cluster !== undefined) {
      const runners = cluster.runners.map((runner) => `${runner.address} pid ${runner.pid}`).join(", ")
      yield* Console.log(`Started ${options.runners} runners (${runners}), one worker thread each; cluster storage ${cluster.options.db}`)
    }
    yield* Console.log(
      `Extracting ${options.users} users with ${options.posts} posts each from ${api.url} (20-80 ms a call, a few 503s), ` +
        `transforming each post, loading into ${options.db}\n`
    )
    const serial = yield* runPipeline("serial  ", TaskPool.serial, options.db)
    const callsAfterSerial = api.calls()
    const parallel = yield* runPipeline("parallel", pool, options.db)
    const calls = api.calls()
    yield* Console.log(`\nserial:   ${serial.seconds.toFixed(2)} s, ${serial.rows.users} users and ${serial.rows.posts} posts in the database`)
    yield* Console.log(
      `parallel: ${parallel.seconds.toFixed(2)} s, ${parallel.rows.users} users and ${parallel.rows.posts} posts in the database ` +
        (cluster === undefined
          ? `(maxWorkers ${parallel.maxWorkers}, ${parallel.last?.threads ?? 0} worker threads)`
          : `(maxWorkers ${parallel.maxWorkers}, the transform on ${options.runners} runners)`)
    )
    if (cluster !== undefined) {
      const reports = yield* cluster.stop
      yield* Console.log(
        `runners:  ${reports.reduce((total, report) => total + report.ran, 0)} transforms; ` +
          reports.map((report) => `${report.address} ran ${report.ran}`).join(", ")
      )
    }
    yield* Console.log(`tasks:    ${parallel.last?.finished ?? 0} per run, ${parallel.last?.failed ?? 0} failed`)
    yield* Console.log(`speedup:  ${(serial.seconds / parallel.seconds).toFixed(1)}x`)
    yield* Console.log(
      `api:      ${calls.total} calls, ${calls.unavailable} answered 503 and were retried ` +
        `(${callsAfterSerial.unavailable} in the serial run)`
    )
    yield* Console.log(
      serial.rows.users === parallel.rows.users && serial.rows.posts === parallel.rows.posts
        ? "rows:     the same in both runs: loading is idempotent"
        : "rows:     the runs differ!"
    )
  }).pipe(Effect.scoped, Effect.provide(services(options))))

demo.pipe(
  Command.run({ version: "0.1.0" }),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)

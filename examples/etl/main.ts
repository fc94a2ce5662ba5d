/**
 * The demo: an extract-transform-load job like the ones pylateral was made
 * for, entirely on this machine. It serves a blog API on loopback, then runs
 * the same pipeline twice, under `TaskPool.serial` and under
 * `TaskPool.layerConfig`, into one SQLite database, and compares.
 *
 *   npm run demo -- --help
 */
import { NodeHttpClient, NodeRuntime, NodeServices } from "@effect/platform-node"
import { Config, Console, Duration, Effect, Layer, Option, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import { TaskPool } from "effect-lateral"
import { BlogApi } from "./api.ts"
import { countRows, extractAll, prepareDatabase, type RowCounts } from "./pipeline.ts"
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
    const pool = TaskPool.layerConfig({
      maxWorkers: Option.getOrUndefined(options.workers),
      threads: Option.getOrUndefined(options.threads)
    })
    yield* prepareDatabase(options.db)
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
        `(maxWorkers ${parallel.maxWorkers}, ${parallel.last?.threads ?? 0} worker threads)`
    )
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
  }).pipe(Effect.provide(services(options))))

demo.pipe(
  Command.run({ version: "0.1.0" }),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)

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
 * Each run ends with a table per task, from the pool's metrics
 * (`TaskMetrics.summary`). With `--otlp URL`, each run's traces, metrics and
 * logs go to an OpenTelemetry collector too (OTLP over HTTP, JSON).
 *
 *   npm run demo -- --help
 *   npm run demo -- --runners 3
 *   npm run demo -- --otlp http://localhost:4318
 */
import { NodeHttpClient, NodeRuntime, NodeServices } from "@effect/platform-node"
import { Config, Console, Duration, Effect, Layer, Metric, Option, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import type * as HttpClient from "effect/http/HttpClient"
import { Otlp } from "effect/observability"
import { TaskMetrics, TaskPool } from "effect-lateral"
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
  ),
  otlp: Flag.String("otlp").pipe(
    Flag.withDescription("Send traces, metrics and logs to an OpenTelemetry collector at this base URL (OTLP/HTTP JSON, e.g. http://localhost:4318)"),
    Flag.optional
  )
}

interface Run {
  readonly seconds: number
  readonly rows: RowCounts
  readonly maxWorkers: number
  /** The pool's counters when it closed. */
  readonly last: TaskPool.Progress | undefined
  /** Its tasks' figures, from the metrics. */
  readonly tasks: ReadonlyArray<TaskMetrics.TaskSummary>
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

/**
 * One run of the pipeline, with a metric registry of its own so that its
 * table counts only its tasks; with `otlp`, its traces, metrics and logs are
 * exported there (and flushed when the run ends).
 */
const runPipeline = (label: string, pool: Layer.Layer<TaskPool.TaskPool, unknown>, path: string, otlp: Option.Option<string>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const progress = showProgress(label)
    const maxWorkers = yield* Effect.gen(function*() {
      yield* progress.report
      yield* extractAll
      return (yield* TaskPool.TaskPool).maxWorkers
    }).pipe(Effect.withSpan(`pipeline ${label.trim()}`), Effect.provide(pool), Effect.provide(exporter(otlp)))
    if (process.stdout.isTTY) yield* Effect.sync(() => process.stdout.write("\n"))
    const seconds = (Date.now() - started) / 1000
    const tasks = yield* TaskMetrics.summary
    return { seconds, rows: yield* countRows(path), maxWorkers, last: progress.last(), tasks } satisfies Run
  }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))

/** Effect's own OTLP exporter, when asked for. */
const exporter = (otlp: Option.Option<string>): Layer.Layer<never, never, HttpClient.HttpClient> =>
  Option.match(otlp, {
    onNone: () => Layer.empty,
    onSome: (baseUrl) => Otlp.layerJson({ baseUrl, resource: { serviceName: "lateral-demo" } })
  })

/** The table of a run's tasks: runs, failures, retries, and the p50 and p95 of their durations. */
const taskTable = (tasks: ReadonlyArray<TaskMetrics.TaskSummary>): string => {
  const ms = (seconds: number | undefined) => seconds === undefined ? "-" : (seconds * 1000).toFixed(1)
  const rows = [
    ["task", "runs", "failed", "retried", "p50 ms", "p95 ms"],
    ...tasks.map((t) => [t.task, String(t.submitted), String(t.failed), String(t.retried), ms(t.p50), ms(t.p95)])
  ]
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)).join("  ")).join("\n")
}

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
    const serial = yield* runPipeline("serial  ", TaskPool.serial, options.db, options.otlp)
    const callsAfterSerial = api.calls()
    const parallel = yield* runPipeline("parallel", pool, options.db, options.otlp)
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
    yield* Console.log(`\nper task, parallel run (from the pool's metrics):\n${taskTable(parallel.tasks)}`)
    if (Option.isSome(options.otlp)) yield* Console.log(`\ntraces, metrics and logs of both runs sent to ${options.otlp.value}`)
  }).pipe(Effect.scoped, Effect.provide(services(options))))

demo.pipe(
  Command.run({ version: "0.1.0" }),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)

/**
 * The pool that runs tasks, as a service with two layers: `layer`, which runs
 * tasks in parallel, and `serial`, which runs each task inline at its call.
 * The program that submits tasks is the same under both; `layerConfig` picks
 * one from the environment (`LATERAL_*`).
 *
 * The parallel pool is scoped: closing its scope waits for every task,
 * including tasks submitted while it waits, so code after
 * `Effect.provide(program, TaskPool.layer())` runs once all the work is done.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import type { SocketServerError } from "effect/socket/SocketServer"
import type { SqlError } from "effect/sql/SqlError"
import * as Stream from "effect/Stream"
import { availableParallelism } from "node:os"
import type { ResourceLimits } from "node:worker_threads"
import type { Engine } from "./internal/engine.ts"
import { checkPoolOptions, describe, inCode, type PoolOptions, type RawPoolOptions, type Source } from "./internal/options.ts"
import * as Parallel from "./internal/parallel.ts"
import * as Serial from "./internal/serial.ts"
import { TaskPool } from "./internal/service.ts"
import * as Telemetry from "./internal/telemetry.ts"
import type { Stats as EngineStats, TaskStats as EngineTaskStats } from "./internal/stats.ts"
import { insideWorkerThread } from "./internal/threads.ts"
import type { PoolTimeoutError } from "./TaskError.ts"

/**
 * The pool service. Programs rarely touch it directly: calling a task,
 * `Task.group`, `Task.await`, `TaskPool.join` and `WorkerLocal` all use the
 * pool found in the context.
 *
 * @category services
 * @since 0.1.0
 */
export { TaskPool } from "./internal/service.ts"

/**
 * What a pool offers: `mode` and `maxWorkers` say which pool it is, `stats`
 * reads its counters; the other members are the operations behind `Task`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Service extends Engine {}

/**
 * A pool's counters at one moment. `running` counts started tasks that have
 * not finished (including tasks waiting on their children); `queued`, tasks
 * waiting for a free lane; `byTask`, the same counters by task name.
 *
 * @category models
 * @since 0.1.0
 */
export interface Stats extends EngineStats {}

/**
 * One task's counters in `Stats.byTask`.
 *
 * @category models
 * @since 0.2.0
 */
export interface TaskStats extends EngineTaskStats {}

/**
 * Options of the parallel pool.
 *
 * - `maxWorkers`: the most tasks running code at once, of every kind
 *   (default: `availableParallelism() * 5`). A task that waits on the pool
 *   gives its lane up meanwhile. Lanes cost nothing until used.
 * - `threads`: worker threads for portable tasks (default:
 *   `availableParallelism()`), never more than `maxWorkers`. They start with
 *   the first portable task (or at once, with `warmUp`) and stop when the
 *   pool closes. `0` runs portable tasks on the calling thread like any other.
 * - `timeout`: bounds the final wait when the scope closes; on expiry every
 *   task is interrupted and the scope fails with `PoolTimeoutError`.
 * - `blockWhenSaturated`: a submit waits for a free lane instead of queueing,
 *   so a producer of a million tasks holds bounded memory.
 * - `resourceLimits`: Node's limits for each worker thread (heap sizes, stack).
 * - `crashLimit`: how many times one task may crash a worker thread (running
 *   alone there) before it fails with `WorkerCrashError` (default 3). The
 *   other tasks a crashed thread held are sent again.
 * - `warmUp`: start the worker threads when the layer is built, each
 *   importing the task modules imported so far, rather than with the first
 *   portable task: for programs that know they will need them.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly maxWorkers?: number | undefined
  readonly threads?: number | undefined
  readonly timeout?: Duration.Input | undefined
  readonly blockWhenSaturated?: boolean | undefined
  readonly resourceLimits?: ResourceLimits | undefined
  readonly crashLimit?: number | undefined
  readonly warmUp?: boolean | undefined
}

/**
 * The default `maxWorkers`: five tasks per core, as pylateral does for I/O-bound work.
 *
 * @category constants
 * @since 0.1.0
 */
export const defaultMaxWorkers: number = availableParallelism() * 5

/**
 * The parallel pool, as a scoped layer.
 *
 * **Example** (Running tasks in parallel)
 *
 * ```ts
 * import { Console, Effect } from "effect"
 * import { Task, TaskPool } from "effect-lateral"
 *
 * const greet = Task.make("greet", (name: string) => Console.log(`hello ${name}`))
 *
 * const program = Effect.gen(function*() {
 *   for (const name of ["ada", "grace", "edsger"]) yield* greet(name)
 * }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 10 })))
 * // every greeting has been printed when `program` completes
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: {
  (options: Options & { readonly timeout: Duration.Input }): Layer.Layer<TaskPool, PoolTimeoutError>
  (options?: Options): Layer.Layer<TaskPool>
} = (options?: Options) =>
  // Typed by overload: the close fails with `PoolTimeoutError` only when a timeout is set.
  Layer.effect(TaskPool, Effect.flatMap(validate("TaskPool.layer", options ?? {}), Parallel.make)) as Layer.Layer<TaskPool, never>

/**
 * The serial pool: each task runs inline at its call, in order, and a failure
 * surfaces at that call. Use it to debug, or wherever parallelism is unwanted;
 * the program does not change.
 *
 * @category layers
 * @since 0.1.0
 */
export const serial: Layer.Layer<TaskPool> = Layer.effect(TaskPool, Serial.make)

/**
 * Picks the pool from configuration, read through Effect's `Config` (the
 * environment by default):
 *
 * | variable | meaning |
 * |---|---|
 * | `LATERAL_ENABLED` | `false` selects `serial` (default `true`) |
 * | `LATERAL_WORKERS` | `maxWorkers`, a positive integer |
 * | `LATERAL_THREADS` | `threads`, a non-negative integer |
 * | `LATERAL_TIMEOUT` | `timeout`, a duration such as `30 seconds`, or seconds |
 * | `LATERAL_BLOCK_WHEN_SATURATED` | `blockWhenSaturated`, a boolean |
 *
 * Options given in code win over configuration. A bad value fails the layer
 * with a `ConfigError` naming the variable and the value, before any task runs.
 *
 * **Example** (Turning the pool off from the environment)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { TaskPool } from "effect-lateral"
 *
 * declare const program: Effect.Effect<void, never, TaskPool.TaskPool>
 *
 * // LATERAL_ENABLED=false runs the same program serially
 * const main = program.pipe(Effect.provide(TaskPool.layerConfig()))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerConfig = (options?: Options): Layer.Layer<TaskPool, Config.ConfigError | PoolTimeoutError> =>
  Layer.unwrap(Effect.map(fromConfig, (config) => {
    if (!config.enabled) return serial
    return layer({
      ...config.options,
      ...Object.fromEntries(Object.entries(options ?? {}).filter(([, value]) => value !== undefined))
    } as Options & { readonly timeout: Duration.Input })
  }))

/**
 * Waits until every task submitted so far, and everything those tasks
 * submit, has finished; then raises the pool's first failure, if any. Use it
 * as a barrier between two phases of a program.
 *
 * Inside a task, `join` waits for the tasks that task has submitted and their
 * descendants (a task cannot wait for itself). Descendants include tasks
 * submitted by fibers that outlived their task. Under `serial` every task has
 * already finished, so `join` only raises the pool's failure, if any.
 *
 * **Example** (Two phases)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Task, TaskPool } from "effect-lateral"
 *
 * const download = Task.make("download", (id: number) => Effect.log(`download ${id}`))
 * const index = Task.make("index", (id: number) => Effect.log(`index ${id}`))
 *
 * const program = Effect.gen(function*() {
 *   for (let id = 0; id < 10; id++) yield* download(id)
 *   yield* TaskPool.join // every download is done
 *   for (let id = 0; id < 10; id++) yield* index(id)
 * })
 * ```
 *
 * @category waiting
 * @since 0.1.0
 */
export const join: Effect.Effect<void, never, TaskPool> = TaskPool.use((pool) => pool.join).pipe(Telemetry.span("TaskPool.join"))

/**
 * The current counters of the pool in context, in all and by task name
 * (`byTask`). For durations, retries and timeouts per task, read the metrics:
 * `TaskMetrics.summary`.
 *
 * **Example** (Counters, in all and per task)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { TaskMetrics, TaskPool } from "effect-lateral"
 *
 * const report = Effect.gen(function*() {
 *   const { submitted, failed, byTask } = yield* TaskPool.stats
 *   const loadsFailed = byTask.load?.failed ?? 0
 *   const durations = yield* TaskMetrics.summary // [{ task, p50, p95, retried, ... }]
 *   return { submitted, failed, loadsFailed, durations }
 * })
 * ```
 *
 * @category observability
 * @since 0.1.0
 */
export const stats: Effect.Effect<Stats, never, TaskPool> = TaskPool.use((pool) => pool.stats)

/**
 * One sample of `progress`: the pool's counters, the time since the stream
 * started, and how many tasks finished per second since the last sample.
 *
 * @category observability
 * @since 0.1.0
 */
export interface Progress extends Stats {
  /** Tasks that finished, whatever the outcome. */
  readonly finished: number
  readonly elapsed: Duration.Duration
  /** Tasks finished per second since the previous sample. */
  readonly rate: number
}

/**
 * The pool's counters, sampled every `interval` (default one second) from
 * now until the pool closes, and once more when it has closed: the stream
 * then ends by itself. To report from inside the pool's body, use
 * `onProgress`, which the pool waits for before its scope ends.
 *
 * @category observability
 * @since 0.1.0
 */
export const progress = (interval: Duration.Input = "1 second"): Stream.Stream<Progress, never, TaskPool> =>
  Stream.unwrap(Effect.gen(function*() {
    const pool = yield* TaskPool
    const started = yield* Clock.currentTimeMillis
    const sample = Effect.zipWith(pool.stats, Clock.currentTimeMillis, (stats, now) => ({ stats, now }))
    return Stream.fromEffectSchedule(sample, Schedule.spaced(interval)).pipe(
      Stream.interruptWhen(pool.closed),
      Stream.concat(Stream.fromEffect(sample)),
      Stream.mapAccum(() => ({ finished: 0, at: started }), (previous, { now, stats }) => {
        const finished = stats.succeeded + stats.failed + stats.interrupted
        const seconds = (now - previous.at) / 1000
        const rate = seconds > 0 ? (finished - previous.finished) / seconds : 0
        return [{ finished, at: now }, [{ ...stats, finished, elapsed: Duration.millis(now - started), rate }]] as const
      })
    )
  }))

/**
 * Calls `report` with the pool's `progress` every `interval`, for as long as
 * the pool runs, and once more with the final counters after every task has
 * finished. The pool's scope waits for that last report, so a progress line
 * always ends on the true totals.
 *
 * **Example** (A log line every five seconds)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { TaskPool } from "effect-lateral"
 *
 * declare const work: Effect.Effect<void, never, TaskPool.TaskPool>
 *
 * const program = Effect.gen(function*() {
 *   yield* TaskPool.onProgress("5 seconds", (p) => Effect.log(`${p.finished}/${p.submitted} done, ${p.rate.toFixed(0)}/s`))
 *   yield* work
 * }).pipe(Effect.provide(TaskPool.layer()))
 * ```
 *
 * @category observability
 * @since 0.1.0
 */
export const onProgress = <R>(
  interval: Duration.Input,
  report: (progress: Progress) => Effect.Effect<void, never, R>
): Effect.Effect<void, never, TaskPool | R> =>
  Effect.gen(function*() {
    const pool = yield* TaskPool
    const context = yield* Effect.context<R | TaskPool>()
    yield* pool.watch(Effect.provideContext(Stream.runForEach(progress(interval), report), context))
  })

export type { ClusterOptions, RunnerOptions, ShardingSettings } from "./internal/cluster/options.ts"
import type { ClusterOptions, RunnerOptions } from "./internal/cluster/options.ts"

/**
 * A pool whose portable tasks run on a cluster of runner processes
 * (`runner`, or `npx effect-lateral runner`), on this machine or many,
 * through `effect/cluster`: the same program as under `layer`, with one
 * Layer changed. Tasks that are not portable run in this process, on the
 * pool's lanes, as under `layer`.
 *
 * Submit, `Task.await`, groups, `join`, a failure interrupting the other
 * tasks of its scope (on their runners too), each task's `timeout` and
 * `retry` (each attempt a request of its own), `maxWorkers` (a task on a
 * runner holds a lane) and `stats` work as under `layer`; `stats.threads` is
 * 0, the threads being the runners'. Payloads cross in their JSON
 * form (`Schema.toCodecJson` of the task's schema; binary data as base64):
 * a payload that form cannot encode fails the submit with `TaskPayloadError`.
 *
 * What does not carry over:
 *
 * - exactly-once: a task whose runner dies mid-task runs again on another
 *   runner (at-least-once). Make tasks idempotent.
 * - tasks on runners submitting tasks: a task that submits, groups or joins
 *   tasks while on a runner fails with a defect that says so. Submit them
 *   from the program.
 * - worker-local instances (`WorkerLocal`, a portable task's `layer`) live on
 *   each runner's worker threads, not in this process.
 *
 * The layer fails with `SqlError` if the storage cannot be reached. See
 * `docs/cluster.md`.
 *
 * **Example** (The same program on a cluster)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Task, TaskPool } from "effect-lateral"
 *
 * // tasks.ts: a portable task, served by runners started with
 * //   npx effect-lateral runner --port 34431 --db cluster.db --module ./tasks.ts
 * export const square = Task.make("square", (n: number) => Effect.succeed(n * n), {
 *   module: import.meta.url,
 *   payload: Schema.Number,
 *   success: Schema.Number
 * })
 *
 * const program = Effect.gen(function*() {
 *   const squares = yield* Task.group(Effect.forEach([1, 2, 3], (n) => square(n), { discard: true }), { results: [square] })
 *   yield* Effect.log(squares.results(square)) // 1, 4, 9, in any order
 * }).pipe(Effect.provide(TaskPool.layerCluster({ db: "cluster.db", maxWorkers: 64 })))
 * ```
 *
 * @category layers
 * @since 0.2.0
 */
export const layerCluster: {
  (options: ClusterOptions & { readonly timeout: Duration.Input }): Layer.Layer<TaskPool, SqlError | PoolTimeoutError>
  (options: ClusterOptions): Layer.Layer<TaskPool, SqlError>
} = (options: ClusterOptions) =>
  Layer.unwrap(Effect.gen(function*() {
    const { blockWhenSaturated, maxWorkers, timeout } = options
    const pool = yield* validate("TaskPool.layerCluster", { maxWorkers, timeout, blockWhenSaturated, threads: 0 })
    // Imported on use: programs that never use a cluster do not load effect/cluster.
    const cluster = yield* Effect.promise(() => import("./internal/cluster/pool.ts"))
    return cluster.layer(options, pool)
  }))

/**
 * A runner of the cluster behind `layerCluster`, as a layer: for as long as
 * the layer lives, this process holds its share of the deploy's shards and
 * runs the portable tasks sent to them on its own worker threads. When the
 * layer's scope closes, its shards move to the other runners; durable tasks
 * that were running here run again there.
 *
 * `npx effect-lateral runner --help` starts one from the command line.
 *
 * **Example** (A runner process)
 *
 * ```ts
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { TaskPool } from "effect-lateral"
 *
 * TaskPool.runner({ port: 34431, db: "cluster.db", modules: ["./dist/tasks.js"], threads: 4 }).pipe(
 *   Layer.launch,
 *   NodeRuntime.runMain
 * )
 * ```
 *
 * @category layers
 * @since 0.2.0
 */
export const runner = (options: RunnerOptions): Layer.Layer<never, SocketServerError | SqlError> =>
  // Imported on use: programs that never run a runner do not load effect/cluster.
  Layer.unwrap(Effect.map(Effect.promise(() => import("./internal/cluster/runner.ts")), (runner) => runner.layer(options, layer)))

// -----------------------------------------------------------------------------
// options and configuration

/** The parallel pool's settings: checked options, with the defaults filled in. */
const settings = (options: PoolOptions): Parallel.ParallelOptions => {
  const maxWorkers = options.maxWorkers ?? defaultMaxWorkers
  return {
    maxWorkers,
    // No more threads than tasks that can run at once: the others could never get work.
    threads: insideWorkerThread ? 0 : Math.min(options.threads ?? availableParallelism(), maxWorkers),
    timeout: options.timeout,
    blockWhenSaturated: options.blockWhenSaturated ?? false,
    resourceLimits: options.resourceLimits,
    crashLimit: options.crashLimit ?? defaultCrashLimit,
    warmUp: options.warmUp ?? false
  }
}

/**
 * How many times one task may crash a worker thread before it fails with
 * `WorkerCrashError`, by default.
 *
 * @category constants
 * @since 0.2.0
 */
export const defaultCrashLimit: number = 3

/** Options given in code to `layer` (or another constructor): a bad one is a defect that names the option and the value. */
const validate = (constructor: string, options: Options): Effect.Effect<Parallel.ParallelOptions> =>
  Effect.suspend(() => {
    const checked = checkPoolOptions(options, inCode)
    return Result.isSuccess(checked)
      ? Effect.succeed(settings(checked.success))
      : Effect.die(new Cause.IllegalArgumentError(`${constructor}: ${describe(checked.failure, inCode)}`))
  })

/** The variable behind each option that configuration sets. */
const variables = {
  maxWorkers: "LATERAL_WORKERS",
  threads: "LATERAL_THREADS",
  timeout: "LATERAL_TIMEOUT",
  blockWhenSaturated: "LATERAL_BLOCK_WHEN_SATURATED"
} as const

const trueWords = ["true", "yes", "on", "1", "y"]
const falseWords = ["false", "no", "off", "0", "n"]

/** A boolean as environments write it, in any case; other words stay as written, to be refused. */
const booleanWord = (raw: string): boolean | string => {
  const word = raw.trim().toLowerCase()
  return trueWords.includes(word) ? true : falseWords.includes(word) ? false : raw
}

/** An integer as written; anything else stays as written, to be refused. */
const integerWord = (raw: string): number | string => /^\s*[+-]?\d+\s*$/.test(raw) ? Number(raw) : raw

/** A duration such as "30 seconds", or a plain number of seconds as pylateral took. */
const durationWord = (raw: string): Duration.Input | string =>
  /^\s*[+-]?(\d+\.?\d*|\.\d+)\s*$/.test(raw) ? Duration.seconds(Number(raw)) : raw as Duration.Input

const configError = (message: string) => new Config.ConfigError(new ConfigProvider.SourceError({ message }))

const fromConfig: Effect.Effect<{ readonly enabled: boolean; readonly options: RawPoolOptions }, Config.ConfigError> = Effect.gen(
  function*() {
    const raw = yield* Config.all({
      enabled: Config.option(Config.String("LATERAL_ENABLED")),
      maxWorkers: Config.option(Config.String(variables.maxWorkers)),
      threads: Config.option(Config.String(variables.threads)),
      timeout: Config.option(Config.String(variables.timeout)),
      blockWhenSaturated: Config.option(Config.String(variables.blockWhenSaturated))
    })
    const enabled = Option.match(raw.enabled, { onNone: () => true, onSome: booleanWord })
    if (typeof enabled !== "boolean") {
      return yield* Effect.fail(configError(`LATERAL_ENABLED=${JSON.stringify(enabled)} is not a boolean (true/false, yes/no, on/off, 1/0)`))
    }
    const options: RawPoolOptions = {
      maxWorkers: Option.getOrUndefined(Option.map(raw.maxWorkers, integerWord)),
      threads: Option.getOrUndefined(Option.map(raw.threads, integerWord)),
      timeout: Option.getOrUndefined(Option.map(raw.timeout, durationWord)),
      blockWhenSaturated: Option.getOrUndefined(Option.map(raw.blockWhenSaturated, booleanWord))
    }
    // The same checks as options in code, shown as the environment wrote them.
    const source: Source = {
      name: (option) => option in variables ? variables[option as keyof typeof variables] : option,
      show: (option) => JSON.stringify(Option.getOrUndefined(raw[option as keyof typeof raw]))
    }
    const checked = checkPoolOptions(options, source)
    if (Result.isFailure(checked)) return yield* Effect.fail(configError(describe(checked.failure, source)))
    return { enabled, options }
  }
)

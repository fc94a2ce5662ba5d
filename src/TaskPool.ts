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
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as SchemaTransformation from "effect/SchemaTransformation"
import * as Stream from "effect/Stream"
import { availableParallelism } from "node:os"
import type { ResourceLimits } from "node:worker_threads"
import type { Engine, Stats as EngineStats } from "./internal/model.ts"
import * as Parallel from "./internal/parallel.ts"
import * as Serial from "./internal/serial.ts"
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
export class TaskPool extends Context.Service<TaskPool, Service>()("effect-lateral/TaskPool") {}

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
 * waiting for a free lane.
 *
 * @category models
 * @since 0.1.0
 */
export interface Stats extends EngineStats {}

/**
 * Options of the parallel pool.
 *
 * - `maxWorkers`: the most tasks running at once, of every kind (default:
 *   `availableParallelism() * 5`).
 * - `threads`: worker threads for portable tasks (default:
 *   `min(maxWorkers, availableParallelism())`). They start with the first
 *   portable task and stop when the pool closes. `0` runs portable tasks on
 *   the calling thread like any other.
 * - `timeout`: bounds the final wait when the scope closes; on expiry every
 *   task is interrupted and the scope fails with `PoolTimeoutError`.
 * - `blockWhenSaturated`: a submit waits for a free lane instead of queueing,
 *   so a producer of a million tasks holds bounded memory.
 * - `resourceLimits`: Node's limits for each worker thread (heap sizes, stack).
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
  Layer.effect(TaskPool, Effect.flatMap(validate(options ?? {}), Parallel.make)) as Layer.Layer<TaskPool, never>

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
      ...options,
      maxWorkers: options?.maxWorkers ?? config.maxWorkers,
      threads: options?.threads ?? config.threads,
      timeout: options?.timeout ?? config.timeout,
      blockWhenSaturated: options?.blockWhenSaturated ?? config.blockWhenSaturated
    } as Options & { readonly timeout: Duration.Input })
  }))

/**
 * Waits until every task submitted so far, and everything those tasks
 * submit, has finished; then raises the pool's first failure, if any. Use it
 * as a barrier between two phases of a program.
 *
 * Inside a task, `join` waits for the tasks that task has submitted and their
 * descendants (a task cannot wait for itself). Under `serial` every task has
 * already finished, so `join` returns at once.
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
export const join: Effect.Effect<void, never, TaskPool> = TaskPool.use((pool) => pool.join)

/**
 * The current counters of the pool in context.
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

// -----------------------------------------------------------------------------
// options and configuration

const validate = (options: Options): Effect.Effect<Parallel.ParallelOptions> =>
  Effect.suspend(() => {
    const maxWorkers = options.maxWorkers ?? defaultMaxWorkers
    if (!Number.isSafeInteger(maxWorkers) || maxWorkers < 1) {
      return Effect.die(new Cause.IllegalArgumentError(`TaskPool: maxWorkers must be a positive integer, got ${maxWorkers}`))
    }
    const threads = insideWorkerThread ? 0 : options.threads ?? Math.min(maxWorkers, availableParallelism())
    if (!Number.isSafeInteger(threads) || threads < 0) {
      return Effect.die(new Cause.IllegalArgumentError(`TaskPool: threads must be a non-negative integer, got ${threads}`))
    }
    let timeout: Duration.Duration | undefined
    if (options.timeout !== undefined) {
      const decoded = Duration.fromInput(options.timeout)
      if (Option.isNone(decoded)) {
        return Effect.die(new Cause.IllegalArgumentError(`TaskPool: timeout must be a duration, got ${String(options.timeout)}`))
      }
      timeout = decoded.value
    }
    return Effect.succeed({
      maxWorkers,
      threads,
      timeout,
      blockWhenSaturated: options.blockWhenSaturated ?? false,
      resourceLimits: options.resourceLimits
    })
  })

/**
 * One `LATERAL_*` variable. A bad value fails with a `ConfigError` that quotes
 * it, since Effect's own message names only the variable.
 */
const variable = <A>(name: string, schema: Schema.ConstraintCodec<A, unknown>, expected: string): Config.Config<A | undefined> =>
  Config.schema(schema, name).pipe(
    Config.option,
    Config.map(Option.getOrUndefined),
    Config.orElse(() =>
      Config.String(name).pipe(Config.mapEffect((raw) =>
        Effect.fail(
          new Config.ConfigError(
            new ConfigProvider.SourceError({ message: `${name}=${JSON.stringify(raw)} is not ${expected}` })
          )
        )
      ))
    )
  )

const trueWords = ["true", "yes", "on", "1", "y"]
const falseWords = ["false", "no", "off", "0", "n"]

/** A boolean as environments write it, in any case. */
const BooleanWord = Schema.String.pipe(
  Schema.decodeTo(Schema.Literals([...trueWords, ...falseWords]), SchemaTransformation.toLowerCase()),
  Schema.decodeTo(
    Schema.Boolean,
    SchemaTransformation.transform({ decode: (word) => trueWords.includes(word), encode: (value) => value ? "true" : "false" })
  )
)

/** A duration such as "30 seconds", or a plain number of seconds as pylateral took. */
const DurationWord = Schema.Union([
  Schema.DurationFromString,
  Schema.NumberFromString.pipe(
    Schema.check(Schema.isGreaterThanOrEqualTo(0)),
    Schema.decodeTo(
      Schema.Duration,
      SchemaTransformation.transform({ decode: Duration.seconds, encode: Duration.toSeconds })
    )
  )
])

const booleans = "a boolean (true/false, yes/no, on/off, 1/0)"

const fromConfig = Config.all({
  enabled: variable("LATERAL_ENABLED", BooleanWord, booleans),
  maxWorkers: variable("LATERAL_WORKERS", Schema.Int.check(Schema.isGreaterThan(0)), "a positive integer"),
  threads: variable("LATERAL_THREADS", Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)), "a non-negative integer"),
  timeout: variable("LATERAL_TIMEOUT", DurationWord, "a duration such as \"30 seconds\" or a number of seconds"),
  blockWhenSaturated: variable("LATERAL_BLOCK_WHEN_SATURATED", BooleanWord, booleans)
}).pipe(Config.map((config) => ({ ...config, enabled: config.enabled ?? true })))

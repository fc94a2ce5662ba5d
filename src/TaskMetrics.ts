/**
 * The metrics the pools record, through Effect's `Metric`: so any exporter
 * Effect supports (OpenTelemetry, Prometheus) sees them, and
 * `Metric.snapshot` reads them. Every task metric carries the attribute
 * `task` (the task's name); `failed` carries `error` too (the error's `_tag`,
 * its class name, or `"Defect"`). Durations are in seconds.
 *
 * `TaskMetrics.summary` reads them back as one row per task, for a report at
 * the end of a program. `TaskMetrics.TimingEnabled` turns the timing of runs
 * off where tasks are tiny and many.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"

/**
 * Counter: task runs submitted.
 *
 * **Example** (Reading the count of one task)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { TaskMetrics } from "effect-lateral"
 *
 * const count = Effect.map(Metric.snapshot, (snapshots) =>
 *   snapshots.filter((s) => s.id === TaskMetrics.submitted && s.attributes?.task === "fetch"))
 * ```
 *
 * @category names
 * @since 0.2.0
 */
export const submitted = "lateral_tasks_submitted_total"

/**
 * Counter: task runs that succeeded.
 *
 * **Example** (The metric's name)
 *
 * ```ts
 * import { TaskMetrics } from "effect-lateral"
 *
 * TaskMetrics.succeeded // "lateral_tasks_succeeded_total"
 * ```
 *
 * @category names
 * @since 0.2.0
 */
export const succeeded = "lateral_tasks_succeeded_total"

/**
 * Counter: task runs that failed (after their retries), by `task` and `error`.
 *
 * **Example** (The metric's name)
 *
 * ```ts
 * import { TaskMetrics } from "effect-lateral"
 *
 * TaskMetrics.failed // "lateral_tasks_failed_total"
 * ```
 *
 * @category names
 * @since 0.2.0
 */
export const failed = "lateral_tasks_failed_total"

/**
 * Counter: task runs interrupted (their group or pool failed, or the program
 * was interrupted).
 *
 * **Example** (The metric's name)
 *
 * ```ts
 * import { TaskMetrics } from "effect-lateral"
 *
 * TaskMetrics.interrupted // "lateral_tasks_interrupted_total"
 * ```
 *
 * @category names
 * @since 0.2.0
 */
export const interrupted = "lateral_tasks_interrupted_total"

/**
 * Counter: attempts retried by a task's `retry` schedule.
 *
 * **Example** (The metric's name)
 *
 * ```ts
 * import { TaskMetrics } from "effect-lateral"
 *
 * TaskMetrics.retried // "lateral_tasks_retried_total"
 * ```
 *
 * @category names
 * @since 0.2.0
 */
export const retried = "lateral_tasks_retried_total"

/**
 * Counter: attempts that ran out of the task's `timeout`.
 *
 * **Example** (The metric's name)
 *
 * ```ts
 * import { TaskMetrics } from "effect-lateral"
 *
 * TaskMetrics.timedOut // "lateral_tasks_timed_out_total"
 * ```
 *
 * @category names
 * @since 0.2.0
 */
export const timedOut = "lateral_tasks_timed_out_total"

/**
 * Histogram: seconds from a run's start on a lane to its end, retries included.
 *
 * **Example** (The metric's name)
 *
 * ```ts
 * import { TaskMetrics } from "effect-lateral"
 *
 * TaskMetrics.duration // "lateral_task_duration_seconds"
 * ```
 *
 * @category names
 * @since 0.2.0
 */
export const duration = "lateral_task_duration_seconds"

/**
 * Histogram: seconds a run waited in the pool's queue for a free lane (0 for
 * a run that started at its submit).
 *
 * **Example** (The metric's name)
 *
 * ```ts
 * import { TaskMetrics } from "effect-lateral"
 *
 * TaskMetrics.queueWait // "lateral_task_queue_wait_seconds"
 * ```
 *
 * @category names
 * @since 0.2.0
 */
export const queueWait = "lateral_task_queue_wait_seconds"

/**
 * Gauge: task runs holding a lane now.
 *
 * **Example** (The metric's name)
 *
 * ```ts
 * import { TaskMetrics } from "effect-lateral"
 *
 * TaskMetrics.running // "lateral_tasks_running"
 * ```
 *
 * @category names
 * @since 0.2.0
 */
export const running = "lateral_tasks_running"

/**
 * Gauge: task runs waiting for a lane now.
 *
 * **Example** (The metric's name)
 *
 * ```ts
 * import { TaskMetrics } from "effect-lateral"
 *
 * TaskMetrics.queued // "lateral_tasks_queued"
 * ```
 *
 * @category names
 * @since 0.2.0
 */
export const queued = "lateral_tasks_queued"

/**
 * Counter (no `task` attribute): worker threads that died (an uncaught
 * exception, `process.exit`, running out of memory).
 *
 * **Example** (The metric's name)
 *
 * ```ts
 * import { TaskMetrics } from "effect-lateral"
 *
 * TaskMetrics.threadCrashes // "lateral_thread_crashes_total"
 * ```
 *
 * @category names
 * @since 0.2.0
 */
export const threadCrashes = "lateral_thread_crashes_total"

/**
 * Counter (no `task` attribute): worker threads started again after a crash.
 *
 * **Example** (The metric's name)
 *
 * ```ts
 * import { TaskMetrics } from "effect-lateral"
 *
 * TaskMetrics.threadRespawns // "lateral_thread_respawns_total"
 * ```
 *
 * @category names
 * @since 0.2.0
 */
export const threadRespawns = "lateral_thread_respawns_total"

/**
 * Whether runs are timed for `duration` and `queueWait` (and the spans'
 * `lateral.queue_ms`): on by default. Timing a run reads the clock twice,
 * which is most of what the metrics cost on tasks that take well under a
 * microsecond; turn it off where the code submitting such tasks runs, and the
 * counters and gauges are still kept. Read once per submitting context.
 *
 * **Example** (Counting a million tiny tasks without timing them)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Task, TaskMetrics, TaskPool } from "effect-lateral"
 *
 * const increment = Task.make("increment", (n: number) => Effect.succeed(n + 1))
 *
 * const program = Effect.gen(function*() {
 *   for (let i = 0; i < 1_000_000; i++) yield* increment(i)
 * }).pipe(Effect.provideService(TaskMetrics.TimingEnabled, false), Effect.provide(TaskPool.layer()))
 * ```
 *
 * @category references
 * @since 0.2.0
 */
export const TimingEnabled: Context.Reference<boolean> = Context.Reference<boolean>("effect-lateral/TaskMetrics/TimingEnabled", {
  defaultValue: () => true
})

/**
 * One task's figures, from the metrics: its runs by outcome, its retries and
 * timeouts, its runs running and queued now, and its run durations (p50 and
 * p95 estimated from the histogram's buckets, in seconds; `undefined` before
 * any run ended).
 *
 * **Example** (The slowest tasks)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { TaskMetrics } from "effect-lateral"
 *
 * const slowest = Effect.map(TaskMetrics.summary, (rows: ReadonlyArray<TaskMetrics.TaskSummary>) =>
 *   [...rows].sort((a, b) => (b.p95 ?? 0) - (a.p95 ?? 0)).slice(0, 3))
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export interface TaskSummary {
  readonly task: string
  readonly submitted: number
  readonly succeeded: number
  readonly failed: number
  readonly interrupted: number
  readonly retried: number
  readonly timedOut: number
  readonly running: number
  readonly queued: number
  readonly p50: number | undefined
  readonly p95: number | undefined
}

/**
 * One row per task name that has run in this process (in the current
 * `Metric.MetricRegistry`), sorted by name: `TaskPool.stats` by task.
 *
 * **Example** (A table at the end of a program)
 *
 * ```ts
 * import { Console, Effect } from "effect"
 * import { TaskMetrics } from "effect-lateral"
 *
 * const report = Effect.flatMap(TaskMetrics.summary, (rows) => Console.table(rows))
 * ```
 *
 * @category reading
 * @since 0.2.0
 */
export const summary: Effect.Effect<ReadonlyArray<TaskSummary>> = Effect.map(Metric.snapshot, (snapshots) => {
  const rows = new Map<string, { -readonly [K in keyof TaskSummary]: TaskSummary[K] }>()
  const row = (task: string) => {
    let found = rows.get(task)
    if (found === undefined) {
      found = { task, submitted: 0, succeeded: 0, failed: 0, interrupted: 0, retried: 0, timedOut: 0, running: 0, queued: 0, p50: undefined, p95: undefined }
      rows.set(task, found)
    }
    return found
  }
  const counters = { [submitted]: "submitted", [succeeded]: "succeeded", [failed]: "failed", [interrupted]: "interrupted", [retried]: "retried", [timedOut]: "timedOut" } as const
  const gauges = { [running]: "running", [queued]: "queued" } as const
  for (const snapshot of snapshots) {
    const task = snapshot.attributes?.task
    if (typeof task !== "string") continue
    if (snapshot.type === "Counter" && snapshot.id in counters) {
      row(task)[counters[snapshot.id as keyof typeof counters]] += Number(snapshot.state.count)
    } else if (snapshot.type === "Gauge" && snapshot.id in gauges) {
      row(task)[gauges[snapshot.id as keyof typeof gauges]] += Number(snapshot.state.value)
    } else if (snapshot.type === "Histogram" && snapshot.id === duration) {
      const found = row(task)
      found.p50 = quantile(snapshot.state, 0.5)
      found.p95 = quantile(snapshot.state, 0.95)
    }
  }
  return [...rows.values()].sort((a, b) => a.task < b.task ? -1 : a.task > b.task ? 1 : 0)
})

/** The `q` quantile of a histogram, interpolated linearly inside its bucket (bounded by the observed min and max). */
const quantile = (state: Metric.HistogramState, q: number): number | undefined => {
  if (state.count === 0) return undefined
  const rank = q * state.count
  let lower = state.min
  let below = 0
  for (const [boundary, cumulated] of state.buckets) {
    if (cumulated >= rank) {
      const upper = Math.min(boundary, state.max)
      const inBucket = cumulated - below
      const estimate = inBucket === 0 ? upper : lower + (upper - lower) * ((rank - below) / inBucket)
      return Math.max(state.min, Math.min(state.max, estimate))
    }
    lower = Math.max(boundary, state.min)
    below = cumulated
  }
  return state.max
}

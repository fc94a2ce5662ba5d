/**
 * What the pools tell Effect's Tracer, Metric and Logger about each run: a
 * span per run (child of the span that submitted it), metrics per task name,
 * and log annotations naming the task and the run. The pools call the
 * functions here at submit, start and end; everything else lives here.
 *
 * Cheap when unobserved: spans are made only when a tracer other than
 * Effect's default one is installed; a run's metrics are plain counters that
 * the metric registry reads when it is read; and what a submitter's context
 * says (tracer, loggers, metric registry, log annotations) is read once per
 * context, not per run: a loop of submits from one fiber shares one context.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import * as Names from "../TaskMetrics.ts"
import type { TaskDef } from "./taskDef.ts"

// ---------------------------------------------------------------------------
// metrics

/** Durations in seconds, from half a millisecond to about a minute (and +Infinity). */
const boundaries = Metric.exponentialBoundaries({ start: 0.0005, factor: 2, count: 18 })

/** A histogram kept by hand: recording is a binary search and a few stores; the state is built when read. */
class Histogram {
  private readonly counts = new Uint32Array(boundaries.length)
  private count = 0
  private sum = 0
  private min = Number.MAX_VALUE
  private max = -Number.MAX_VALUE

  /** Records a zero (a run that started at its submit waited no time): the first bucket. */
  recordZero(): void {
    this.counts[0]!++
    this.count++
    if (this.min > 0) this.min = 0
    if (this.max < 0) this.max = 0
  }

  record(value: number): void {
    let low = 0
    let high = boundaries.length - 1
    while (low < high) {
      const mid = (low + high) >>> 1
      if (value <= boundaries[mid]!) high = mid
      else low = mid + 1
    }
    this.counts[low]!++
    this.count++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }

  readonly state = (): Metric.HistogramState => {
    let cumulated = 0
    return {
      buckets: boundaries.map((boundary, i) => [boundary, cumulated += this.counts[i]!] as [number, number]),
      count: this.count,
      min: this.min,
      max: this.max,
      sum: this.sum
    }
  }
}

const noUpdate = () => {}

/**
 * One task's figures in one metric registry. The registry reads them through
 * `Metric.registerUnsafe`, so recording a run is plain arithmetic: no
 * registry lookup, no allocation.
 */
export class TaskFigures {
  submitted = 0
  succeeded = 0
  interrupted = 0
  retried = 0
  timedOut = 0
  running = 0
  queued = 0
  readonly duration = new Histogram()
  readonly queueWait = new Histogram()
  private readonly failures = new Map<string, { count: number }>()
  private readonly attributes: { readonly task: string }
  private readonly context: Context.Context<never>

  constructor(task: string, context: Context.Context<never>) {
    this.attributes = { task }
    this.context = context
    const counter = (name: string, description: string, count: () => number) =>
      this.register(Metric.counter(name, { description, attributes: this.attributes, incremental: true }), () => ({ count: count(), incremental: true }))
    const gauge = (name: string, description: string, value: () => number) =>
      this.register(Metric.gauge(name, { description, attributes: this.attributes }), () => ({ value: value() }))
    const histogram = (name: string, description: string, histogram: Histogram) =>
      this.register(Metric.histogram(name, { description, attributes: this.attributes, boundaries }), histogram.state)
    counter(Names.submitted, "Task runs submitted", () => this.submitted)
    counter(Names.succeeded, "Task runs that succeeded", () => this.succeeded)
    counter(Names.interrupted, "Task runs interrupted (their group or pool failed, or the program stopped)", () => this.interrupted)
    counter(Names.retried, "Attempts retried by a task's retry schedule", () => this.retried)
    counter(Names.timedOut, "Attempts that ran out of the task's timeout", () => this.timedOut)
    gauge(Names.running, "Task runs holding a lane now", () => this.running)
    gauge(Names.queued, "Task runs waiting for a lane now", () => this.queued)
    histogram(Names.duration, "Seconds from a run's start on a lane to its end, retries included", this.duration)
    histogram(Names.queueWait, "Seconds a run waited for a free lane", this.queueWait)
  }

  private register<State>(metric: Metric.Metric<number, State>, get: () => State): void {
    Metric.registerUnsafe(metric, this.context, { get, update: noUpdate, modify: noUpdate })
  }

  /** Counts a failed run under its error's tag; the first failure with a tag registers its series. */
  failed(error: string): void {
    let failures = this.failures.get(error)
    if (failures === undefined) {
      const counted = failures = { count: 0 }
      this.failures.set(error, counted)
      this.register(
        Metric.counter(Names.failed, { description: "Task runs that failed, by error tag", attributes: { ...this.attributes, error }, incremental: true }),
        () => ({ count: counted.count, incremental: true })
      )
    }
    failures.count++
  }
}

/** Figures by registry, then contextual metric attributes, then task: each series is registered once. */
const figuresByRegistry = new WeakMap<Metric.MetricRegistry, WeakMap<Metric.Metric.AttributeSet, Map<string, TaskFigures>>>()

const figuresFor = (registry: Metric.MetricRegistry, attributes: Metric.Metric.AttributeSet): Map<string, TaskFigures> => {
  let byAttributes = figuresByRegistry.get(registry)
  if (byAttributes === undefined) figuresByRegistry.set(registry, byAttributes = new WeakMap())
  let byTask = byAttributes.get(attributes)
  if (byTask === undefined) byAttributes.set(attributes, byTask = new Map())
  return byTask
}

const threadCrashes = Metric.counter(Names.threadCrashes, {
  description: "Worker threads that died (an uncaught exception, process.exit, out of memory)",
  incremental: true
})
const threadRespawns = Metric.counter(Names.threadRespawns, {
  description: "Worker threads started again after a crash",
  incremental: true
})

/** Counts a worker thread that died, in the registry of `context` (the pool's). */
export const threadCrashed = (context: Context.Context<never>): void => threadCrashes.updateUnsafe(1, context)

/** Counts a worker thread started again after a crash, in the registry of `context` (the pool's). */
export const threadRespawned = (context: Context.Context<never>): void => threadRespawns.updateUnsafe(1, context)

/** The tag of a failure's error (`_tag`, else the class name), `"Defect"` for a defect. */
export const errorTag = (cause: Cause.Cause<unknown>): string => {
  for (const reason of cause.reasons) {
    if (Cause.isFailReason(reason)) {
      const error = reason.error
      if (typeof error === "object" && error !== null) {
        const tag = (error as { readonly _tag?: unknown })._tag
        return typeof tag === "string" ? tag : error.constructor?.name ?? "Object"
      }
      return typeof error
    }
  }
  return "Defect"
}

const outcomeOf = (exit: Exit.Exit<unknown, unknown>): "success" | "failure" | "interrupted" =>
  exit._tag === "Success" ? "success" : Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "failure"

// ---------------------------------------------------------------------------
// what a submitter's context says

const defaultLoggers = Context.get(Context.empty(), Logger.CurrentLoggers)

/** Whether spans made in `context` go anywhere: a tracer other than Effect's default one is installed, and tracing is on. */
const tracingIn = (context: Context.Context<never>): boolean =>
  Context.get(context, Tracer.Tracer) !== Tracer.nativeTracer && Context.get(context, References.TracerEnabled)

/** What telemetry reads from a submitter's context, once per context. */
export class Sink {
  readonly tracing: boolean
  /** Whether the submitter has loggers of its own (not Effect's default ones). */
  readonly logging: boolean
  readonly minimumLogLevel: LogLevel.LogLevel
  /** Whether runs are timed (`TaskMetrics.TimingEnabled`). */
  readonly timing: boolean
  readonly logAnnotations: Readonly<Record<string, unknown>> | undefined
  private readonly registry: Metric.MetricRegistry
  private readonly attributes: Metric.Metric.AttributeSet
  /** The registry's figures by task name. */
  private readonly figures: Map<string, TaskFigures>

  constructor(context: Context.Context<never>) {
    this.tracing = tracingIn(context)
    this.logging = Context.get(context, Logger.CurrentLoggers) !== defaultLoggers
    this.minimumLogLevel = Context.get(context, References.MinimumLogLevel)
    this.timing = Context.get(context, Names.TimingEnabled)
    const logAnnotations = Context.get(context, References.CurrentLogAnnotations)
    this.logAnnotations = Object.keys(logAnnotations).length > 0 ? logAnnotations : undefined
    this.registry = Context.get(context, Metric.MetricRegistry)
    this.attributes = Context.get(context, Metric.CurrentMetricAttributes)
    this.figures = figuresFor(this.registry, this.attributes)
  }

  // A loop submits one task over and over: its figures are kept at hand.
  private lastTask: string | undefined = undefined
  private lastFigures: TaskFigures | undefined = undefined

  figuresOf(task: string): TaskFigures {
    if (task === this.lastTask) return this.lastFigures!
    let figures = this.figures.get(task)
    if (figures === undefined) {
      // Series are registered where the registry and the contextual attributes say.
      const metrics = Context.makeUnsafe(
        new Map<string, unknown>([[Metric.MetricRegistry.key, this.registry], [Metric.CurrentMetricAttributes.key, this.attributes]])
      )
      this.figures.set(task, figures = new TaskFigures(task, metrics))
    }
    this.lastTask = task
    this.lastFigures = figures
    return figures
  }
}

// One entry: submits come in runs from one fiber (a loop, a task's fan-out). It keeps that one context alive.
let lastContext: Context.Context<never> | undefined = undefined
let lastSink: Sink | undefined = undefined

const sinkOf = (context: Context.Context<never>): Sink => {
  if (context !== lastContext) {
    lastSink = new Sink(context)
    lastContext = context
  }
  return lastSink!
}

// ---------------------------------------------------------------------------
// a run's phases

/** What telemetry reads and writes of a run (the pools' `Run`). */
export interface Observed {
  readonly def: TaskDef
  readonly context: Context.Context<never>
  readonly lane: number
  id: number
  sink: Sink
  figures: TaskFigures
  startedAt: number
  queuedAt: number
  attempt: number
  span: Tracer.Span | undefined
}

let lastRunId = 0

/** A run was submitted: it gets its id, its sink and its task's figures. */
export const submitted = (run: Observed): void => {
  run.id = ++lastRunId
  const sink = run.sink = sinkOf(run.context)
  const figures = run.figures = sink.figuresOf(run.def.name)
  figures.submitted++
}

/** A run waits for a lane. */
export const enqueued = (run: Observed): void => {
  run.figures.queued++
  if (run.sink.timing) run.queuedAt = performance.now()
}

/** A run leaves the queue for a lane. */
export const dequeued = (run: Observed): void => {
  const figures = run.figures
  figures.queued--
  if (!run.sink.timing) return
  run.startedAt = performance.now()
  figures.queueWait.record((run.startedAt - run.queuedAt) / 1000)
}

/** A run starts (after `dequeued` if it waited). */
export const started = (run: Observed): void => {
  const figures = run.figures
  figures.running++
  if (run.startedAt === 0 && run.sink.timing) {
    // Started at its submit: no clock read for the wait.
    run.startedAt = performance.now()
    figures.queueWait.recordZero()
  }
}

/** A run ended (or was dropped from the queue before it started). */
export const finished = (run: Observed, exit: Exit.Exit<unknown, unknown>, dropped: boolean): void => {
  const figures = run.figures
  if (dropped) figures.queued--
  else {
    figures.running--
    if (run.startedAt !== 0) figures.duration.record((performance.now() - run.startedAt) / 1000)
  }
  if (exit._tag === "Success") figures.succeeded++
  else if (Cause.hasInterruptsOnly(exit.cause)) figures.interrupted++
  else figures.failed(errorTag(exit.cause))
}

/** An attempt of `run` is about to be retried. */
export const retried = (run: Observed): void => {
  run.attempt++
  run.figures.retried++
  run.span?.event("lateral.retry", Context.get(run.context, Clock.Clock).currentTimeNanosUnsafe(), { "lateral.attempt": run.attempt })
}

/** An attempt of `run` ran out of time. */
export const timedOut = (run: Observed): void => {
  run.figures.timedOut++
}

// ---------------------------------------------------------------------------
// spans and log annotations

/**
 * `context` (the submitter's, plus the pool's own services) with `run`'s log
 * annotations, for the fiber the run's code runs in; `more` are those its code
 * added on a worker thread.
 */
export const annotated = (run: Observed, context: Context.Context<never>, more?: Readonly<Record<string, unknown>>): Context.Context<never> =>
  Context.add(
    context,
    References.CurrentLogAnnotations,
    // A literal unless there are annotations of the submitter's: the common case stays cheap.
    run.sink.logAnnotations === undefined && more === undefined
      ? { "lateral.task": run.def.name, "lateral.run": run.id }
      : { ...run.sink.logAnnotations, ...more, "lateral.task": run.def.name, "lateral.run": run.id }
  )

/**
 * `effect` (a run's attempts) in a span named after the task, child of the
 * submitter's span, when a tracer is installed; `effect` itself otherwise.
 */
export const traced = <A, E, R>(run: Observed, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  if (!run.sink.tracing) return effect
  const attributes: Record<string, unknown> = {
    "lateral.task": run.def.name,
    "lateral.run": run.id,
    "lateral.portable": run.def.portable !== undefined
  }
  if (run.sink.timing) attributes["lateral.queue_ms"] = run.queuedAt === 0 ? 0 : run.startedAt - run.queuedAt
  if (run.lane >= 0) attributes["lateral.lane"] = run.lane
  return Effect.useSpan(run.def.name, { attributes }, (span) => {
    run.span = span
    return Effect.onExit(Effect.withParentSpan(effect, span), (exit) =>
      Effect.sync(() => {
        span.attribute("lateral.attempts", run.attempt)
        span.attribute("lateral.outcome", outcomeOf(exit))
        if (exit._tag === "Failure" && !Cause.hasInterruptsOnly(exit.cause)) span.attribute("lateral.error", errorTag(exit.cause))
      }))
  })
}

/** The context a run submitted from `run`'s code on another thread gets: `run`'s, under `run`'s span. */
export const submitterContext = (run: Observed): Context.Context<never> =>
  run.span === undefined ? run.context : Context.add(run.context, Tracer.ParentSpan, run.span)

/** `run`'s attempt went to worker thread `thread`. */
export const onThread = (run: Observed, thread: number): void => run.span?.attribute("lateral.thread", thread)

/** `effect` as a span when a tracer is installed (for waits such as `TaskPool.join`); `effect` otherwise. */
export const span = (name: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => tracingIn(fiber.context) ? Effect.withSpan(effect, name) : effect)

/**
 * Spans and log lines of a portable task that runs on a worker thread, sent
 * back to the caller's Tracer and Logger. The caller sends its run's span
 * context with the attempt; the worker runs the task under that span (an
 * external parent) with a tracer and a logger that only record; the records
 * go back with the task's result and are replayed, in the caller's context,
 * before the result is. Off unless the caller observes: a tracer installed,
 * or loggers of its own.
 *
 * What a replay cannot keep: a replayed span gets a new id from the caller's
 * tracer (its children are replayed under it), so tasks the worker's code
 * submits are children of the task's own span, not of a span inside it; log
 * lines are written when the task ends, not when they were logged; spans and
 * lines that end after the task (a forked fiber that outlives it) are lost.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import type { Run } from "./run.ts"
import { annotated } from "./telemetry.ts"

/** Sent with an attempt when the caller observes: its minimum log level, and the run's span context when it traces. */
export type WireCaller = readonly [minimumLogLevel: LogLevel.LogLevel, span?: readonly [traceId: string, spanId: string, sampled: boolean]]

/** A finished span; `failure` is the cause's text, `null` for an interruption, `undefined` for a success. */
export type WireSpan = readonly [
  spanId: string,
  parentId: string | undefined,
  name: string,
  kind: Tracer.SpanKind,
  startTime: bigint,
  endTime: bigint,
  attributes: Array<readonly [string, unknown]>,
  events: Array<readonly [name: string, time: bigint, attributes: Record<string, unknown>]>,
  failure: string | null | undefined
]

/** A log line; `cause` is the cause's text, if it has one. */
export type WireLog = readonly [
  level: LogLevel.LogLevel,
  message: Array<unknown>,
  annotations: Record<string, unknown>,
  cause: string | undefined
]

/** What one task recorded on its thread. */
export type WireTelemetry = readonly [spans: Array<WireSpan>, logs: Array<WireLog>]

// ---------------------------------------------------------------------------
// the caller's side

/** What to send with `run`'s attempt: `undefined` when the caller does not observe. */
export const callerOf = (run: Run): WireCaller | undefined => {
  const { span, sink } = run
  if (span !== undefined) return [sink.minimumLogLevel, [span.traceId, span.spanId, span.sampled]]
  return sink.logging ? [sink.minimumLogLevel] : undefined
}

/** Replays what `run` recorded on its thread: its spans through the caller's tracer, its lines through the caller's loggers. */
export const replay = (run: Run, [spans, logs]: WireTelemetry): void => {
  const parent = run.span
  if (parent !== undefined && spans.length > 0) replaySpans(run, parent, spans)
  if (logs.length === 0) return
  const base = parent === undefined ? run.context : Context.add(run.context, Tracer.ParentSpan, parent)
  for (const [level, message, annotations, cause] of logs) {
    const context = annotated(run, base, annotations)
    const line = cause === undefined ? message : [...message, Cause.die(cause)]
    Effect.runForkWith(context)(Effect.logWithLevel(level as LogLevel.Severity)(...line))
  }
}

const replaySpans = (run: Run, parent: Tracer.Span, spans: Array<WireSpan>): void => {
  const tracer = Context.get(run.context, Tracer.Tracer)
  const byId = new Map(spans.map((span) => [span[0], span]))
  const replayed = new Map<string, Tracer.Span>()
  const make = (wire: WireSpan): Tracer.Span => {
    const [spanId, parentId, name, kind, startTime, endTime, attributes, events, failure] = wire
    const known = replayed.get(spanId)
    if (known !== undefined) return known
    const recordedParent = parentId === undefined ? undefined : byId.get(parentId)
    const spanParent = recordedParent === undefined ? parent : make(recordedParent)
    const span = tracer.span({
      name,
      parent: Option.some(spanParent),
      annotations: Context.empty(),
      links: [],
      startTime,
      kind,
      root: false,
      sampled: spanParent.sampled
    })
    replayed.set(spanId, span)
    for (const [key, value] of attributes) span.attribute(key, value)
    for (const [event, time, eventAttributes] of events) span.event(event, time, eventAttributes)
    span.end(
      endTime,
      failure === undefined ? Exit.void : failure === null ? Exit.interrupt() : Exit.failCause(Cause.die(failure))
    )
    return span
  }
  for (const span of spans) make(span)
}

// ---------------------------------------------------------------------------
// the worker's side

/** A value as it can cross to another thread: as is if it can be cloned, else its text. */
const cloneable = (value: unknown): unknown => {
  if (value === null || (typeof value !== "object" && typeof value !== "function" && typeof value !== "symbol")) return value
  if (typeof value !== "object") return String(value)
  try {
    structuredClone(value)
    return value
  } catch {
    return String(value)
  }
}

const cloneableRecord = (record: Readonly<Record<string, unknown>>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const key in record) out[key] = cloneable(record[key])
  return out
}

/** A finished span, as it crosses back. */
const toWire = (span: Tracer.NativeSpan, endTime: bigint, exit: Exit.Exit<unknown, unknown>): WireSpan => [
  span.spanId,
  Option.getOrUndefined(span.parent)?.spanId,
  span.name,
  span.kind,
  span.startTime,
  endTime,
  [...span.attributes].map(([key, value]) => [key, cloneable(value)] as const),
  span.events.map(([name, time, attributes]) => [name, time, cloneableRecord(attributes)] as const),
  exit._tag === "Success" ? undefined : Cause.hasInterruptsOnly(exit.cause) ? null : Cause.pretty(exit.cause)
]

/** A span that records itself into `spans` when it ends. */
class RecordedSpan extends Tracer.NativeSpan {
  private readonly spans: Array<WireSpan>
  constructor(options: ConstructorParameters<typeof Tracer.NativeSpan>[0], spans: Array<WireSpan>) {
    super(options)
    this.spans = spans
  }
  override end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    if (this.status._tag === "Ended") return
    super.end(endTime, exit)
    this.spans.push(toWire(this, endTime, exit))
  }
}

/**
 * `context` for a task whose caller observes: with a logger that records
 * into `recorded`, and, when the caller traces, under the caller's span with
 * a tracer that records there too.
 */
export const recording = (context: Context.Context<never>, [minimumLogLevel, parent]: WireCaller, recorded: WireTelemetry): Context.Context<never> => {
  const [spans, logs] = recorded
  const logger = Logger.make(({ cause, fiber, logLevel, message }) => {
    logs.push([
      logLevel,
      (Array.isArray(message) ? message : [message]).map(cloneable),
      cloneableRecord(fiber.getRef(References.CurrentLogAnnotations)),
      cause.reasons.length === 0 ? undefined : Cause.pretty(cause)
    ])
  })
  // The caller's level: lines it would drop are not recorded, lines it keeps are.
  const logging = Context.add(Context.add(context, Logger.CurrentLoggers, new Set([logger])), References.MinimumLogLevel, minimumLogLevel)
  if (parent === undefined) return logging
  const tracer = Tracer.make({ span: (options) => new RecordedSpan(options, spans) })
  const parentSpan = Tracer.externalSpan({ traceId: parent[0], spanId: parent[1], sampled: parent[2] })
  return Context.add(Context.add(logging, Tracer.Tracer, tracer), Tracer.ParentSpan, parentSpan)
}

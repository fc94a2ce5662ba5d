import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { assert, describe, it } from "@effect/vitest"
import { MetricReader } from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Logger, Metric, References, Schedule } from "effect"
import { Task, TaskMetrics, TaskPool } from "effect-lateral"
import * as Observed from "./fixtures/observed.ts"
import * as Portable from "./fixtures/portable.ts"
import { bothPools, Boom } from "./helpers.ts"

/** Keeps its spans when the SDK shuts down with the program's layer, so that they can be read after. */
class KeepingExporter extends InMemorySpanExporter {
  override shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

/** The OpenTelemetry SDK, exporting finished spans to memory. */
const tracing = () => {
  const exporter = new KeepingExporter()
  const layer = NodeSdk.layer(() => ({ resource: { serviceName: "lateral-test" }, spanProcessor: new SimpleSpanProcessor(exporter) }))
  const spans = () => exporter.getFinishedSpans()
  const named = (name: string): ReadonlyArray<ReadableSpan> => spans().filter((span) => span.name === name)
  const one = (name: string): ReadableSpan => {
    const found = named(name)
    assert.strictEqual(found.length, 1, `one span "${name}" (spans: ${spans().map((span) => span.name).join(", ")})`)
    return found[0]!
  }
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId
  const idOf = (span: ReadableSpan) => span.spanContext().spanId
  return { layer, spans, named, one, parentOf, idOf }
}

/** A fan-out of tasks that run in-process (they close over nothing, but are not portable). */
const leaf = Task.make("leaf", (n: number) => Effect.succeed(n * 2))
const fanOut = Task.make("fanOut", (n: number) =>
  Effect.map(
    Task.group(Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => leaf(i), { discard: true }), { results: [leaf] }),
    (group) => group.results(leaf).reduce((sum, value) => sum + value, 0)
  ))

/** A program that runs `effect` in a span of its own, with `pool` and the tracer. */
const traced = <A, E>(effect: Effect.Effect<A, E, TaskPool.TaskPool>, pool: Layer.Layer<TaskPool.TaskPool>, layer: Layer.Layer<never>) =>
  effect.pipe(Effect.withSpan("program"), Effect.provide(pool), Effect.provide(layer))

describe("spans", () => {
  it.effect.each(bothPools)("%s: a nested fan-out is a tree of task spans under the submitter's", ([, pool]) =>
    Effect.gen(function*() {
      const otel = tracing()
      const sum = yield* traced(Effect.flatMap(fanOut(3), Task.await), pool, otel.layer)
      assert.strictEqual(sum, 6)
      const program = otel.one("program")
      const outer = otel.one("fanOut")
      const group = otel.one("Task.group")
      const leaves = otel.named("leaf")
      assert.strictEqual(otel.parentOf(outer), otel.idOf(program))
      assert.strictEqual(otel.parentOf(group), otel.idOf(outer))
      assert.strictEqual(leaves.length, 3)
      for (const span of leaves) {
        assert.strictEqual(otel.parentOf(span), otel.idOf(group))
        assert.strictEqual(span.spanContext().traceId, program.spanContext().traceId)
        assert.strictEqual(span.attributes["lateral.task"], "leaf")
        assert.strictEqual(span.attributes["lateral.outcome"], "success")
        assert.strictEqual(span.attributes["lateral.attempts"], 1)
        assert.isNumber(span.attributes["lateral.run"])
        assert.isNumber(span.attributes["lateral.queue_ms"])
      }
    }))

  it.effect("a task's failure is recorded on its span", () =>
    Effect.gen(function*() {
      const otel = tracing()
      const failing = Task.make("failing", (id: number) => Effect.fail(new Boom({ id })))
      yield* traced(Effect.exit(Task.group(Effect.asVoid(failing(7)))), TaskPool.layer({ maxWorkers: 2 }), otel.layer)
      const span = otel.one("failing")
      assert.strictEqual(span.status.code, 2, "status ERROR")
      assert.strictEqual(span.attributes["lateral.outcome"], "failure")
      assert.strictEqual(span.attributes["lateral.error"], "Boom")
      assert.isTrue(span.events.some((event) => event.name === "exception"))
    }))

  it.effect("retries are counted on the span, each one an event", () =>
    Effect.gen(function*() {
      const otel = tracing()
      let calls = 0
      const flaky = Task.make("flaky", () => Effect.suspend(() => ++calls < 3 ? Effect.fail(new Boom({ id: calls })) : Effect.succeed("ok")), {
        retry: Schedule.recurs(5)
      })
      yield* traced(Effect.flatMap(flaky(), Task.await), TaskPool.layer({ maxWorkers: 2 }), otel.layer)
      const span = otel.one("flaky")
      assert.strictEqual(span.attributes["lateral.attempts"], 3)
      assert.strictEqual(span.attributes["lateral.outcome"], "success")
      assert.deepStrictEqual(span.events.filter((event) => event.name === "lateral.retry").map((event) => event.attributes?.["lateral.attempt"]), [2, 3])
    }))

  it.effect("TaskPool.join is a span", () =>
    Effect.gen(function*() {
      const otel = tracing()
      yield* traced(Effect.andThen(leaf(1), TaskPool.join), TaskPool.layer({ maxWorkers: 2 }), otel.layer)
      assert.strictEqual(otel.parentOf(otel.one("TaskPool.join")), otel.idOf(otel.one("program")))
    }))

  it.live("a portable fan-out on worker threads: its spans, and those its code makes, form the same tree", () =>
    Effect.gen(function*() {
      const otel = tracing()
      const sum = yield* traced(Effect.flatMap(Observed.fanOut(3), Task.await), TaskPool.layer({ maxWorkers: 4, threads: 2 }), otel.layer)
      assert.strictEqual(sum, 6)
      const outer = otel.one("fanOut")
      assert.strictEqual(otel.parentOf(outer), otel.idOf(otel.one("program")))
      assert.isNumber(outer.attributes["lateral.thread"])
      // The group's span was made on the worker thread, inside the task.
      assert.strictEqual(otel.parentOf(otel.one("Task.group")), otel.idOf(outer))
      const leaves = otel.named("leaf")
      const works = otel.named("leaf.work")
      assert.strictEqual(leaves.length, 3)
      assert.strictEqual(works.length, 3)
      for (const span of leaves) {
        // Tasks submitted from a worker are children of the submitting task's span.
        assert.strictEqual(otel.parentOf(span), otel.idOf(outer))
        assert.isNumber(span.attributes["lateral.thread"])
        assert.strictEqual(span.spanContext().traceId, outer.spanContext().traceId)
      }
      const leafIds = new Set(leaves.map(otel.idOf))
      for (const span of works) assert.isTrue(leafIds.has(otel.parentOf(span)!), "leaf.work under a leaf's span")
    }))

  it.effect("no tracer installed: tasks run without spans", () =>
    Effect.gen(function*() {
      const seen: Array<string | undefined> = []
      const probe = Task.make("probe", () => Effect.map(Effect.option(Effect.currentSpan), (span) => seen.push(span._tag === "Some" ? span.value.name : undefined)))
      yield* Effect.flatMap(probe(), Task.await).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2 })))
      assert.deepStrictEqual(seen, [undefined])
    }))
})

describe("metrics", () => {
  /** Runs `effect` with a metric registry of its own, and returns its snapshot and summary. */
  const measured = <A, E>(effect: Effect.Effect<A, E, TaskPool.TaskPool>, pool: Layer.Layer<TaskPool.TaskPool>) =>
    Effect.gen(function*() {
      yield* Effect.provide(effect, pool)
      return { snapshot: yield* Metric.snapshot, summary: yield* TaskMetrics.summary }
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))

  const valueOf = (snapshot: ReadonlyArray<Metric.Metric.Snapshot>, id: string, attributes: Record<string, string>) => {
    const found = snapshot.filter((s) => s.id === id && Object.entries(attributes).every(([key, value]) => s.attributes?.[key] === value))
    assert.strictEqual(found.length, 1, `one series ${id} ${JSON.stringify(attributes)}`)
    const state = found[0]!.state as { readonly count?: number; readonly value?: number }
    return Number(state.count ?? state.value)
  }

  it.live.each(bothPools)("%s: outcomes, retries and timeouts per task, in Metric.snapshot and TaskMetrics.summary", ([, pool]) =>
    Effect.gen(function*() {
      let calls = 0
      const flaky = Task.make("flaky", () => Effect.suspend(() => ++calls < 3 ? Effect.fail(new Boom({ id: calls })) : Effect.succeed("ok")), {
        retry: Schedule.recurs(5)
      })
      const failing = Task.make("failing", (id: number) => Effect.fail(new Boom({ id })))
      const stuck = Task.make("stuck", () => Effect.never, { timeout: "5 millis" })
      const { snapshot, summary } = yield* measured(
        Effect.gen(function*() {
          yield* Effect.flatMap(flaky(), Task.await)
          yield* Effect.exit(Task.group(Effect.asVoid(failing(1))))
          yield* Effect.exit(Task.group(Effect.asVoid(stuck())))
          for (let i = 0; i < 4; i++) yield* leaf(i)
          yield* TaskPool.join
        }),
        pool
      )
      assert.strictEqual(valueOf(snapshot, TaskMetrics.submitted, { task: "flaky" }), 1)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.succeeded, { task: "flaky" }), 1)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.retried, { task: "flaky" }), 2)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.timedOut, { task: "stuck" }), 1)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.failed, { task: "stuck", error: "TaskTimeoutError" }), 1)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.succeeded, { task: "leaf" }), 4)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.running, { task: "leaf" }), 0)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.queued, { task: "leaf" }), 0)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.duration, { task: "leaf" }), 4)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.queueWait, { task: "leaf" }), 4)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.failed, { task: "failing", error: "Boom" }), 1)
      const rows = new Map(summary.map((row) => [row.task, row]))
      assert.deepInclude(rows.get("flaky"), { submitted: 1, succeeded: 1, failed: 0, retried: 2 })
      assert.deepInclude(rows.get("stuck"), { submitted: 1, failed: 1, timedOut: 1 })
      assert.deepInclude(rows.get("failing"), { submitted: 1, failed: 1 })
      assert.isAtLeast(rows.get("leaf")!.p95!, rows.get("leaf")!.p50!)
    }))

  it.live("with TaskMetrics.TimingEnabled off, runs are counted but not timed", () =>
    Effect.gen(function*() {
      const gate = Task.make("untimed", (_: number) => Effect.yieldNow)
      const { snapshot } = yield* measured(
        Effect.gen(function*() {
          for (let i = 0; i < 3; i++) yield* gate(i)
          yield* TaskPool.join
        }).pipe(Effect.provideService(TaskMetrics.TimingEnabled, false)),
        TaskPool.layer({ maxWorkers: 1 })
      )
      assert.strictEqual(valueOf(snapshot, TaskMetrics.succeeded, { task: "untimed" }), 3)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.queued, { task: "untimed" }), 0)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.duration, { task: "untimed" }), 0)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.queueWait, { task: "untimed" }), 0)
    }))

  it.live("the OpenTelemetry SDK's metric reader sees them, by task and error", () =>
    Effect.gen(function*() {
      /** Collects when asked, and only then. */
      class OnDemandReader extends MetricReader {
        protected override onShutdown(): Promise<void> {
          return Promise.resolve()
        }
        protected override onForceFlush(): Promise<void> {
          return Promise.resolve()
        }
      }
      const reader = new OnDemandReader()
      const Sdk = NodeSdk.layer(() => ({ resource: { serviceName: "lateral-test" }, metricReader: reader }))
      let calls = 0
      const flaky = Task.make("flaky", () => Effect.suspend(() => ++calls < 2 ? Effect.fail(new Boom({ id: calls })) : Effect.succeed("ok")), {
        retry: Schedule.recurs(3)
      })
      const failing = Task.make("failing", (id: number) => Effect.fail(new Boom({ id })))
      const collected = yield* Effect.gen(function*() {
        yield* Effect.flatMap(flaky(), Task.await)
        yield* Effect.exit(Task.group(Effect.asVoid(failing(1))))
        return yield* Effect.promise(() => reader.collect())
      }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 2 })), Effect.provide(Sdk), Effect.provideService(Metric.MetricRegistry, new Map()))
      const points = collected.resourceMetrics.scopeMetrics.flatMap((scope) =>
        scope.metrics.flatMap((metric) => metric.dataPoints.map((point) => ({ name: metric.descriptor.name, attributes: point.attributes, value: point.value })))
      )
      const valueOf = (name: string, attributes: Record<string, string>) =>
        points.find((point) => point.name === name && Object.entries(attributes).every(([key, value]) => point.attributes[key] === value))?.value
      assert.strictEqual(valueOf(TaskMetrics.succeeded, { task: "flaky" }), 1)
      assert.strictEqual(valueOf(TaskMetrics.retried, { task: "flaky" }), 1)
      assert.strictEqual(valueOf(TaskMetrics.failed, { task: "failing", error: "Boom" }), 1)
      assert.strictEqual((valueOf(TaskMetrics.duration, { task: "flaky" }) as { readonly count: number }).count, 1)
    }))

  it.live("a task that kills its worker thread: crashes and respawns counted, then its failure by tag", () =>
    Effect.gen(function*() {
      const { snapshot } = yield* measured(
        Effect.exit(Task.group(Effect.asVoid(Portable.crash("exit")))),
        TaskPool.layer({ maxWorkers: 2, threads: 1, crashLimit: 2 })
      )
      assert.strictEqual(valueOf(snapshot, TaskMetrics.threadCrashes, {}), 2)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.threadRespawns, {}), 1)
      assert.strictEqual(valueOf(snapshot, TaskMetrics.failed, { task: "crash", error: "WorkerCrashError" }), 1)
    }))

  it.live("a queued run counts as queued, then as running", () =>
    Effect.gen(function*() {
      const gate = Task.make("gate", (_: number) => Effect.sleep("20 millis"))
      const observed: Array<readonly [number, number]> = []
      const { snapshot, summary } = yield* measured(
        Effect.gen(function*() {
          for (let i = 0; i < 3; i++) yield* gate(i)
          const now = yield* Metric.snapshot
          observed.push([valueOf(now, TaskMetrics.running, { task: "gate" }), valueOf(now, TaskMetrics.queued, { task: "gate" })])
          yield* TaskPool.join
        }),
        TaskPool.layer({ maxWorkers: 1 })
      )
      assert.deepStrictEqual(observed, [[1, 2]])
      assert.deepInclude(summary.find((row) => row.task === "gate"), { running: 0, queued: 0, succeeded: 3 })
      assert.strictEqual(valueOf(snapshot, TaskMetrics.queueWait, { task: "gate" }), 3)
    }))
})

describe("logs", () => {
  /** A logger that keeps each line's message and annotations. */
  const capture = () => {
    const lines: Array<{ readonly message: unknown; readonly annotations: Readonly<Record<string, unknown>> }> = []
    const logger = Logger.make(({ fiber, message }) => {
      lines.push({ message: Array.isArray(message) ? message[0] : message, annotations: fiber.getRef(References.CurrentLogAnnotations) })
    })
    return { lines, layer: Logger.layer([logger]) }
  }

  it.effect.each(bothPools)("%s: a task's log lines name the task and the run, with the caller's annotations", ([, pool]) =>
    Effect.gen(function*() {
      const logs = capture()
      const chatty = Task.make("chatty", (n: number) => Effect.log(`hello ${n}`))
      yield* Effect.forEach([1, 2], (n) => Effect.flatMap(chatty(n), Task.await)).pipe(
        Effect.annotateLogs("request", "r1"),
        Effect.provide(pool),
        Effect.provide(logs.layer)
      )
      const lines = logs.lines.filter((line) => String(line.message).startsWith("hello"))
      assert.strictEqual(lines.length, 2)
      for (const line of lines) {
        assert.strictEqual(line.annotations["lateral.task"], "chatty")
        assert.strictEqual(line.annotations.request, "r1")
        assert.isNumber(line.annotations["lateral.run"])
      }
      assert.notStrictEqual(lines[0]!.annotations["lateral.run"], lines[1]!.annotations["lateral.run"])
    }))
  it.live("a portable task's log lines on a worker thread go through the caller's logger, annotated", () =>
    Effect.gen(function*() {
      const logs = capture()
      yield* Effect.flatMap(Observed.fanOut(2), Task.await).pipe(
        Effect.annotateLogs("request", "r2"),
        Effect.provide(TaskPool.layer({ maxWorkers: 4, threads: 2 })),
        Effect.provide(logs.layer)
      )
      const lines = logs.lines.filter((line) => String(line.message).startsWith("leaf"))
      // At the caller's minimum level (Info): the Debug lines are dropped.
      assert.deepStrictEqual(lines.map((line) => line.message).sort(), ["leaf 0", "leaf 1"])
      for (const line of lines) {
        assert.strictEqual(line.annotations["lateral.task"], "leaf")
        assert.strictEqual(line.annotations.request, "r2")
        assert.isNumber(line.annotations["lateral.run"])
      }
    }))

  it.live("a caller that logs at Debug gets a worker thread's Debug lines", () =>
    Effect.gen(function*() {
      const logs = capture()
      yield* Effect.flatMap(Observed.leaf(3), Task.await).pipe(
        Effect.provide(TaskPool.layer({ maxWorkers: 2, threads: 1 })),
        Effect.provide(logs.layer),
        Effect.provideService(References.MinimumLogLevel, "Debug")
      )
      assert.deepStrictEqual(logs.lines.map((line) => line.message).filter((message) => String(message).startsWith("leaf")), ["leaf 3", "leaf 3 in detail"])
    }))
})

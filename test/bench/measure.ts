/**
 * The benchmarks' harness: variants run interleaved (A B C A B C …), each
 * warmed up first, repeated; tables report median, minimum and maximum per
 * variant and each row's ratio against the anchor (the first variant) of the
 * same run, under a line that records the machine and its load. Benchmarks
 * print figures; they never assert on them.
 *
 * Environment, read by every suite:
 *
 * - `BENCH_QUICK=1`: every size shrinks to a smoke test (seconds, not minutes).
 * - `BENCH_REPETITIONS`: samples per variant (default 5, quick 2).
 * - `BENCH_WARMUPS`: untimed runs per variant first (default 1; 0 allowed).
 */
import { availableParallelism, cpus, loadavg } from "node:os"

/**
 * One contender of a comparison. Either `run`, which the harness times, or
 * `sample`, which measures itself (say, in a child process) and returns one
 * figure per metric, in seconds.
 */
export type Variant =
  | { readonly name: string; readonly run: () => Promise<unknown> }
  | { readonly name: string; readonly sample: () => Promise<Readonly<Record<string, number>>> }

/** The metric of variants timed by the harness. */
export const wallTime = "seconds"

export interface Comparison {
  readonly repetitions: number
  readonly warmups: number
  /** `os.loadavg()` when the comparison started and when it ended. */
  readonly loadBefore: ReadonlyArray<number>
  readonly loadAfter: ReadonlyArray<number>
  /** Per variant, in the order given: every sample of every metric. */
  readonly rows: ReadonlyArray<{ readonly name: string; readonly samples: Readonly<Record<string, ReadonlyArray<number>>> }>
}

export const quick = process.env.BENCH_QUICK === "1"

/** A whole number from the environment (`BENCH_TASKS=100000`), else the full or the quick default. */
export const fromEnv = (name: string, full: number, quickDefault: number = full, minimum = 1): number => {
  const raw = process.env[name]
  const value = raw === undefined ? (quick ? quickDefault : full) : Number(raw)
  if (!Number.isSafeInteger(value) || value < minimum) throw new Error(`${name}=${raw} is not an integer of at least ${minimum}`)
  return value
}

export const repetitionsFromEnv = (): number => fromEnv("BENCH_REPETITIONS", 5, 2)
const warmupsFromEnv = (): number => fromEnv("BENCH_WARMUPS", 1, 1, 0)

const gc = (globalThis as { gc?: () => void }).gc

const sampleOnce = async (variant: Variant): Promise<Readonly<Record<string, number>>> => {
  if ("sample" in variant) return variant.sample()
  // Collect the previous variant's garbage outside the timed window (suites run with --expose-gc).
  gc?.()
  const started = performance.now()
  await variant.run()
  return { [wallTime]: (performance.now() - started) / 1000 }
}

/** Warms every variant up, then samples them interleaved, `repetitions` rounds. */
export const compare = async (
  variants: ReadonlyArray<Variant>,
  repetitions: number = repetitionsFromEnv(),
  warmups: number = warmupsFromEnv()
): Promise<Comparison> => {
  const loadBefore = loadavg()
  for (const variant of variants) {
    for (let i = 0; i < warmups; i++) await sampleOnce(variant)
  }
  const samples = variants.map(() => ({} as Record<string, Array<number>>))
  for (let round = 0; round < repetitions; round++) {
    for (const [index, variant] of variants.entries()) {
      const bucket = samples[index]!
      for (const [metric, value] of Object.entries(await sampleOnce(variant))) (bucket[metric] ??= []).push(value)
    }
  }
  return {
    repetitions,
    warmups,
    loadBefore,
    loadAfter: loadavg(),
    rows: variants.map((variant, index) => ({ name: variant.name, samples: samples[index]! }))
  }
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const loads = (load: ReadonlyArray<number>) => load.map((value) => value.toFixed(2)).join(" ")

/** Node, CPUs and the load averages (1, 5, 15 minutes) around a comparison. */
export const machine = (comparison?: Comparison): string => {
  const model = cpus()[0]?.model.trim() ?? "unknown CPU"
  const load = comparison === undefined
    ? `load ${loads(loadavg())}`
    : `load ${loads(comparison.loadBefore)} at start, ${loads(comparison.loadAfter)} at end`
  return `Node ${process.version}, ${availableParallelism()} CPUs (${model}), ${load}`
}

export interface TableOptions {
  /** Which metric to show (default: the harness's wall time). */
  readonly metric?: string
  /** `time`: a row's time over the anchor's (lower is faster); `speedup`: the anchor's over the row's. */
  readonly ratio?: "time" | "speedup"
  /** Rate columns at the median, from the work done per sample: `[[1000, "tasks/s"], [64, "MiB/s"]]`. */
  readonly rates?: ReadonlyArray<readonly [number, string]>
  /** Unit of the figures: seconds shown as milliseconds when `ms`. */
  readonly unit?: "s" | "ms"
}

/** A markdown table of one comparison, the first row as anchor, with its machine line. */
export const table = (title: string, comparison: Comparison, options: TableOptions = {}): string => {
  const metric = options.metric ?? wallTime
  const unit = options.unit ?? "s"
  const show = (seconds: number) => unit === "ms" ? (seconds * 1000).toFixed(1) : seconds.toFixed(3)
  const ratio = (value: number, anchor: number) =>
    `${(options.ratio === "speedup" ? anchor / value : value / anchor).toFixed(2)}x`
  const stats = comparison.rows.map(({ name, samples }) => {
    const values = samples[metric]
    if (values === undefined) throw new Error(`variant "${name}" has no samples of ${metric}`)
    return { name, median: median(values), min: Math.min(...values), max: Math.max(...values) }
  })
  const anchor = stats[0]!
  const ratioName = options.ratio === "speedup" ? "speedup" : "vs anchor"
  const header = [
    "variant",
    `median ${unit}`,
    `min ${unit}`,
    `max ${unit}`,
    `${ratioName} (median)`,
    `${ratioName} (min)`,
    ...(options.rates ?? []).map(([, unit]) => `${unit} (median)`)
  ]
  const rows = stats.map((row) => [
    row.name,
    show(row.median),
    show(row.min),
    show(row.max),
    ratio(row.median, anchor.median),
    ratio(row.min, anchor.min),
    ...(options.rates ?? []).map(([count]) => Math.round(count / row.median).toLocaleString("en"))
  ])
  return [
    `### ${title}`,
    "",
    `${machine(comparison)}; ${comparison.repetitions} interleaved samples per variant after ${comparison.warmups} warm-up each; anchor: first row.`,
    "",
    markdown(header, rows),
    ""
  ].join("\n")
}

/** A plain markdown table. */
export const markdown = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [header, header.map(() => "---"), ...rows].map((row) => `| ${row.join(" | ")} |`).join("\n")

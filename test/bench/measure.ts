/**
 * Shared helpers of the benchmarks: interleaved repetitions, medians, and a
 * markdown table. Benchmarks print figures; they never assert on time.
 */

export interface Variant {
  readonly name: string
  /** Runs the workload once and resolves when it is done. */
  readonly run: () => Promise<unknown>
}

/** Runs every variant `repetitions` times, interleaved, after one warm-up each; returns median seconds. */
export const compare = async (variants: ReadonlyArray<Variant>, repetitions: number): Promise<Map<string, number>> => {
  const samples = new Map<string, Array<number>>(variants.map((variant) => [variant.name, []]))
  for (const variant of variants) await variant.run()
  for (let i = 0; i < repetitions; i++) {
    for (const variant of variants) {
      const started = performance.now()
      await variant.run()
      samples.get(variant.name)!.push((performance.now() - started) / 1000)
    }
  }
  return new Map([...samples].map(([name, values]) => [name, median(values)]))
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [header, header.map(() => "---"), ...rows].map((row) => `| ${row.join(" | ")} |`).join("\n")

/** A positive integer from the environment, for quick runs (`BENCH_TASKS=100000`). */
export const fromEnv = (name: string, fallback: number): number => {
  const raw = process.env[name]
  const value = raw === undefined ? fallback : Number(raw)
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name}=${raw} is not a positive integer`)
  return value
}

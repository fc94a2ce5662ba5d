/**
 * The pools' options, checked one way whether they come from code
 * (`TaskPool.layer(options)`, `Task.make`) or from configuration
 * (`LATERAL_*`): each refusal names the option as its source spells it, and
 * the value it got.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type { ResourceLimits } from "node:worker_threads"

/** A value an option cannot take. */
export interface Refusal {
  /** The option, as its source spells it (`maxWorkers`, `LATERAL_WORKERS`). */
  readonly option: string
  /** The value, as its source wrote it. */
  readonly value: string
  readonly expected: string
}

/** The options of the parallel pool, as a user may write them. */
export interface RawPoolOptions {
  readonly maxWorkers?: unknown
  readonly threads?: unknown
  readonly timeout?: unknown
  readonly blockWhenSaturated?: unknown
  readonly resourceLimits?: unknown
  readonly crashLimit?: unknown
  readonly warmUp?: unknown
}

/** The options of the parallel pool, checked; defaults are the caller's. */
export interface PoolOptions {
  readonly maxWorkers: number | undefined
  readonly threads: number | undefined
  readonly timeout: Duration.Duration | undefined
  readonly blockWhenSaturated: boolean | undefined
  readonly resourceLimits: ResourceLimits | undefined
  readonly crashLimit: number | undefined
  readonly warmUp: boolean | undefined
}

/** How a source spells an option and shows a value. */
export interface Source {
  readonly name: (option: keyof RawPoolOptions) => string
  readonly show: (option: keyof RawPoolOptions, value: unknown) => string
}

/** Options written in code. */
export const inCode: Source = {
  name: (option) => option,
  show: (_, value) => typeof value === "string" || (typeof value === "object" && value !== null) ? JSON.stringify(value) : String(value)
}

/** A refusal, as an error message. */
export const describe = (refusal: Refusal, source: Source): string =>
  source === inCode
    ? `${refusal.option} must be ${refusal.expected}, got ${refusal.value}`
    : `${refusal.option}=${refusal.value} is not ${refusal.expected}`

export const expected = {
  positiveInteger: "a positive integer",
  nonNegativeInteger: "a non-negative integer",
  duration: "a non-negative duration such as \"30 seconds\"",
  boolean: "a boolean",
  resourceLimits: "an object of positive sizes in MB (maxOldGenerationSizeMb more than 2)"
} as const

/** A non-negative duration, or undefined. Numbers are milliseconds, as everywhere in Effect. */
export const durationOf = (value: unknown): Duration.Duration | undefined => {
  if (typeof value === "number" && Number.isNaN(value)) return undefined
  const decoded = Duration.fromInput(value as Duration.Input)
  if (Option.isNone(decoded) || Duration.isNegative(decoded.value)) return undefined
  return decoded.value
}

const isInteger = (value: unknown, min: number): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= min

/** Positive sizes. An old generation of 2 MB or less aborts the whole process when a thread starts (Node 24). */
const isResourceLimits = (value: unknown): value is ResourceLimits => {
  if (typeof value !== "object" || value === null) return false
  const limits = value as Record<string, unknown>
  for (const key of ["maxOldGenerationSizeMb", "maxYoungGenerationSizeMb", "codeRangeSizeMb", "stackSizeMb"]) {
    const size = limits[key]
    if (size !== undefined && !(typeof size === "number" && Number.isFinite(size) && size > 0)) return false
  }
  const old = limits.maxOldGenerationSizeMb
  return old === undefined || (old as number) > 2
}

/** Checks the options; the first refusal, in the order the options are listed, wins. */
export const checkPoolOptions = (options: RawPoolOptions, source: Source): Result.Result<PoolOptions, Refusal> => {
  const refuse = (option: keyof RawPoolOptions, value: unknown, expected: string) =>
    Result.fail({ option: source.name(option), value: source.show(option, value), expected })
  const { blockWhenSaturated, crashLimit, maxWorkers, resourceLimits, threads, timeout, warmUp } = options
  if (maxWorkers !== undefined && !isInteger(maxWorkers, 1)) return refuse("maxWorkers", maxWorkers, expected.positiveInteger)
  if (threads !== undefined && !isInteger(threads, 0)) return refuse("threads", threads, expected.nonNegativeInteger)
  const duration = timeout === undefined ? undefined : durationOf(timeout)
  if (timeout !== undefined && duration === undefined) return refuse("timeout", timeout, expected.duration)
  if (blockWhenSaturated !== undefined && typeof blockWhenSaturated !== "boolean") {
    return refuse("blockWhenSaturated", blockWhenSaturated, expected.boolean)
  }
  if (resourceLimits !== undefined && !isResourceLimits(resourceLimits)) {
    return refuse("resourceLimits", resourceLimits, expected.resourceLimits)
  }
  if (crashLimit !== undefined && !isInteger(crashLimit, 1)) return refuse("crashLimit", crashLimit, expected.positiveInteger)
  if (warmUp !== undefined && typeof warmUp !== "boolean") return refuse("warmUp", warmUp, expected.boolean)
  return Result.succeed({
    maxWorkers,
    threads,
    timeout: duration,
    blockWhenSaturated,
    resourceLimits,
    crashLimit,
    warmUp
  })
}

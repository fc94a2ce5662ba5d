/**
 * Messages between the pool (main thread) and its worker threads. Arrays, not
 * objects, because they are structured-cloned by the thousand: tasks travel in
 * batches, one message per batch.
 *
 * @internal
 */
import type { WireCaller, WireTelemetry } from "./threadTelemetry.ts"
import type { WireExit, WireFailure } from "./wire.ts"

/** Main to worker. */
export type ToWorker =
  | readonly [kind: typeof RunBatch, batch: RunColumns]
  | readonly [kind: typeof Interrupt, id: number]
  | readonly [kind: typeof Reply, request: number, reply: WireReply]
  | readonly [kind: typeof InterruptBody, group: number]

/** Worker to main. */
export type FromWorker =
  | readonly [kind: typeof Done, ids: Array<number>, exits: Array<WireExit>, telemetry?: Array<readonly [id: number, recorded: WireTelemetry]>]
  | readonly [kind: typeof Ask, request: number, question: Question]

export const RunBatch = 0
export const Interrupt = 1
export const Reply = 2
export const InterruptBody = 3
export const Done = 0
export const Ask = 1

/** Tasks to run, as columns: task `i` is `ids[i]`, `modules[i]`, ... */
export interface RunColumns {
  readonly ids: Array<number>
  readonly modules: Array<string>
  readonly names: Array<string>
  /** The group the task's own submissions join (0: none). */
  readonly groups: Array<number>
  readonly payloads: Array<unknown>
  /** For tasks whose caller observes, what it observes with (see `threadTelemetry.ts`). */
  readonly callers: Array<WireCaller | undefined>
}

/** What a task running on a worker asks of the pool. `parent` is the asking task's id. */
export type Question =
  | { readonly _tag: "submit"; readonly parent: number; readonly group: number; readonly module: string; readonly name: string; readonly payload: unknown }
  | { readonly _tag: "await"; readonly parent: number; readonly run: number }
  | { readonly _tag: "join"; readonly parent: number }
  | { readonly _tag: "openGroup"; readonly parent: number; readonly collect: ReadonlyArray<readonly [module: string, name: string]> }
  | { readonly _tag: "closeGroup"; readonly parent: number; readonly group: number; readonly bodyFailed: boolean }
  | { readonly _tag: "stats" }

/** An answer: `[0, value]`, or `[1, failure]`. */
export type WireReply = readonly [0, unknown] | readonly [1, WireFailure]

/**
 * The shapes values take when they cross to another thread (or process):
 * arrays of structured-cloneable parts, because they travel by the thousand.
 *
 * @internal
 */

/** An `Exit` on the wire: `[0, value]` or `[1, reasons]`. */
export type WireExit = readonly [0, unknown] | readonly [1, ReadonlyArray<WireReason>]

/** A cause's reason on the wire: `[0, error]`, `[1, defect]`, or `[2]` for an interruption. */
export type WireReason = readonly [0, unknown] | readonly [1, unknown] | readonly [2]

/** A failure, with the task whose schemas encode it ("" for effect-lateral's own errors). */
export type WireFailure = readonly [module: string, name: string, exit: WireExit]

/** The successes of a group's tasks, by task. */
export type WireResults = Array<readonly [module: string, name: string, values: Array<WireExit>]>

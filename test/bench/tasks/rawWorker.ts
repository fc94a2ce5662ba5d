/**
 * A raw `worker_threads` worker: answers `[id, name, payload]` with
 * `[id, work[name](payload)]`, nothing else. With `workerData.importEffect`,
 * it first imports `effect` (the start-up benchmark's baseline for a worker
 * that needs the library); with `workerData.startOnly` it imports no work at all.
 */
import { parentPort, workerData } from "node:worker_threads"

const options = (workerData ?? {}) as { readonly importEffect?: boolean; readonly startOnly?: boolean }
if (options.importEffect) await import("effect")
const work = (options.startOnly ? {} : await import("./work.ts")) as Record<string, (payload: unknown) => unknown>
parentPort!.on("message", ([id, name, payload]: readonly [number, string, unknown]) => {
  parentPort!.postMessage([id, options.startOnly ? payload : work[name]!(payload)])
})

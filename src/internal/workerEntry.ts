/**
 * The one worker entry the library ships: every worker thread of every pool
 * runs this file, and imports task modules by URL as their tasks arrive.
 *
 * It turns on Node's module compile cache first, so that a thread starts
 * faster every time after the first, and starts importing the task modules
 * the pool knows at once, beside its own modules. When the pool closes the
 * thread, the thread ends as soon as its tasks and worker-local instances
 * have: a timer a task module left behind does not keep it alive.
 *
 * @internal
 */
import { enableCompileCache } from "node:module"
import { workerData } from "node:worker_threads"
import type { WorkerData } from "./threads.ts"

enableCompileCache?.()

for (const module of (workerData as WorkerData).preload) {
  // A module that fails to import fails its tasks when they arrive.
  import(module).catch(() => {})
}

const { serveThread } = await import("./workerSide.ts")
serveThread(() => process.exit(0))

/**
 * The least a pool of raw `worker_threads` needs, as the benchmarks' floor:
 * every task goes at once to the thread with the fewest tasks in flight,
 * answers are matched by id. No queue, no retries, no schemas.
 */
import { Worker } from "node:worker_threads"

const script = new URL("./tasks/rawWorker.ts", import.meta.url)

export class RawPool {
  private readonly threads: ReadonlyArray<{ readonly worker: Worker; inFlight: number }>
  private readonly pending = new Map<number, { readonly resolve: (value: unknown) => void; readonly reject: (error: unknown) => void }>()
  private nextId = 0
  /** Resolves once every thread is online. */
  readonly ready: Promise<void>

  constructor(threads: number, workerData: { readonly importEffect?: boolean; readonly startOnly?: boolean } = {}) {
    this.threads = Array.from({ length: threads }, () => {
      const thread = { worker: new Worker(script, { workerData }), inFlight: 0 }
      thread.worker.on("message", ([id, result]: readonly [number, unknown]) => {
        thread.inFlight--
        this.pending.get(id)!.resolve(result)
        this.pending.delete(id)
      })
      thread.worker.on("error", (error) => {
        for (const { reject } of this.pending.values()) reject(error)
        this.pending.clear()
      })
      return thread
    })
    this.ready = Promise.all(this.threads.map(({ worker }) => new Promise((resolve) => worker.once("online", resolve)))).then(() => {})
  }

  /** Runs the export `name` of `tasks/work.ts` on `payload` (copied, not transferred, as the other pools do). */
  run(name: string, payload: unknown): Promise<unknown> {
    let thread = this.threads[0]!
    for (const candidate of this.threads) if (candidate.inFlight < thread.inFlight) thread = candidate
    const id = this.nextId++
    thread.inFlight++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      thread.worker.postMessage([id, name, payload])
    })
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map(({ worker }) => worker.terminate()))
  }
}

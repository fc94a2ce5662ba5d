/**
 * The pool's worker threads, on `effect/workers` and `NodeWorker`.
 *
 * Lane `i` sends its portable tasks to thread `i % threads`, so a lane's
 * resources live on one thread. The threads start together with the first
 * portable task; a thread that died starts again with its next task. Tasks
 * submitted in the same tick travel in one message per thread; results come
 * back the same way. A thread that dies fails the tasks it held with
 * `WorkerCrashError`.
 *
 * @internal
 */
import * as NodeWorker from "@effect/platform-node/NodeWorker"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Worker from "effect/workers/Worker"
import type { WorkerError } from "effect/workers/WorkerError"
import * as WorkerThreads from "node:worker_threads"
import { WorkerCrashError } from "../TaskError.ts"
import type { Run } from "./model.ts"
import type { WireExit } from "./portable.ts"
import * as Protocol from "./protocol.ts"

export interface ThreadOptions {
  readonly threads: number
  readonly maxWorkers: number
  readonly resourceLimits: WorkerThreads.ResourceLimits | undefined
}

/** What the threads need from the pool: answers to their tasks' questions. */
export interface ThreadHost {
  readonly answer: (question: Protocol.Question) => Effect.Effect<Protocol.WireReply>
}

/** The data a worker thread is started with. */
export interface WorkerData {
  readonly lateral: true
  readonly thread: number
  readonly maxWorkers: number
}

/**
 * Whether this is one of a pool's worker threads. A pool made here (say, by a
 * task module that runs its program when imported) gets no threads of its own,
 * so a mistake cannot start threads without end.
 */
export const insideWorkerThread: boolean = (WorkerThreads.workerData as WorkerData | undefined)?.lateral === true

// The entry has this module's extension: `.ts` from source, `.js` from a build.
const entry = new URL(`./workerEntry${import.meta.url.slice(import.meta.url.lastIndexOf("."))}`, import.meta.url)

/** One in-flight task on a thread. */
interface Pending {
  readonly run: Run
  readonly resume: (effect: Effect.Effect<unknown, unknown>) => void
}

class Thread {
  readonly index: number
  worker: Worker.Worker<Protocol.FromWorker, Protocol.ToWorker> | undefined = undefined
  readonly pending = new Map<number, Pending>()
  private batch: Protocol.RunColumns = emptyBatch()
  private flushScheduled = false
  constructor(index: number) {
    this.index = index
  }

  enqueue(id: number, run: Run, group: number): void {
    const batch = this.batch
    batch.ids.push(id)
    batch.modules.push(run.def.portable!.module)
    batch.names.push(run.def.name)
    batch.lanes.push(run.lane!.index)
    batch.groups.push(group)
    batch.payloads.push(run.encoded)
    if (!this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(this.flush)
    }
  }

  readonly flush = (): void => {
    this.flushScheduled = false
    const batch = this.batch
    if (batch.ids.length === 0) return
    this.batch = emptyBatch()
    this.send([Protocol.RunBatch, batch])
  }

  send(message: Protocol.ToWorker): void {
    if (this.worker) Effect.runSync(Effect.ignore(this.worker.send(message)))
  }
}

const emptyBatch = (): Protocol.RunColumns => ({ ids: [], modules: [], names: [], lanes: [], groups: [], payloads: [] })

export class ThreadPool {
  private readonly options: ThreadOptions
  private readonly host: ThreadHost
  private readonly threads: Array<Thread>
  private readonly platform: Worker.WorkerPlatform["Service"]
  private readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => unknown
  private nextTask = 0
  private nextWorker = 0
  private started = false
  private readonly endCallbacks = new Map<number, Array<() => void>>()

  constructor(
    options: ThreadOptions,
    host: ThreadHost,
    platform: Worker.WorkerPlatform["Service"],
    runFork: <A, E>(effect: Effect.Effect<A, E>) => unknown
  ) {
    this.options = options
    this.host = host
    this.platform = platform
    this.runFork = runFork
    this.threads = Array.from({ length: options.threads }, (_, i) => new Thread(i))
  }

  /** One attempt of `run` on its lane's thread; interrupting it interrupts the task there. */
  dispatch(run: Run, group: number): Effect.Effect<unknown, unknown> {
    return Effect.callback<unknown, unknown>((resume) => {
      const thread = this.threads[run.lane!.index % this.threads.length]!
      if (thread.worker === undefined) {
        // The first portable task starts every thread, so that they start in parallel.
        if (this.started) this.start(thread)
        else {
          this.started = true
          for (const each of this.threads) this.start(each)
        }
      }
      const id = ++this.nextTask
      thread.pending.set(id, { run, resume })
      thread.enqueue(id, run, group)
      return Effect.sync(() => {
        if (thread.pending.delete(id)) {
          thread.send([Protocol.Interrupt, id])
          this.ended(id)
        }
      })
    })
  }

  /** How many threads have a worker now. */
  alive(): number {
    return this.threads.filter((thread) => thread.worker !== undefined).length
  }

  /** The run behind a task id a worker thread refers to. */
  runOf(id: number): Run | undefined {
    for (const thread of this.threads) {
      const pending = thread.pending.get(id)
      if (pending) return pending.run
    }
    return undefined
  }

  /** Calls `f` once the task `id` has finished on its thread (or its thread died). */
  onDispatchEnd(id: number, f: () => void): void {
    const callbacks = this.endCallbacks.get(id)
    if (callbacks) callbacks.push(f)
    else this.endCallbacks.set(id, [f])
  }

  private ended(id: number): void {
    const callbacks = this.endCallbacks.get(id)
    if (callbacks === undefined) return
    this.endCallbacks.delete(id)
    for (const f of callbacks) f()
  }

  private start(thread: Thread): void {
    const workerData: WorkerData = { lateral: true, thread: thread.index, maxWorkers: this.options.maxWorkers }
    const spawn = () =>
      new WorkerThreads.Worker(entry, {
        workerData,
        ...(this.options.resourceLimits ? { resourceLimits: this.options.resourceLimits } : {})
      })
    const worker = Effect.runSync(
      this.platform.spawn<Protocol.FromWorker, Protocol.ToWorker>(++this.nextWorker).pipe(
        Effect.provideService(Worker.Spawner, spawn)
      )
    )
    thread.worker = worker
    this.runFork(
      worker.run((message) => this.receive(thread, worker, message)).pipe(
        Effect.onExit((exit) => Effect.sync(() => this.lost(thread, worker, exit)))
      )
    )
  }

  private receive(thread: Thread, worker: Thread["worker"], message: Protocol.FromWorker): Effect.Effect<void> {
    if (message[0] === Protocol.Done) {
      const [, ids, exits] = message
      for (let i = 0; i < ids.length; i++) {
        const pending = thread.pending.get(ids[i]!)
        if (pending === undefined) continue // interrupted meanwhile
        thread.pending.delete(ids[i]!)
        this.ended(ids[i]!)
        pending.resume(decode(pending.run, exits[i]!))
      }
      return Effect.void
    }
    const [, request, question] = message
    return Effect.map(this.host.answer(question), (reply) => {
      // A thread that died since it asked gets no answer.
      if (thread.worker === worker) thread.send([Protocol.Reply, request, reply])
    })
  }

  /** The thread's worker is gone: fail what it held, and let the next task start a new one. */
  private lost(thread: Thread, worker: Thread["worker"], exit: Exit.Exit<never, WorkerError>): void {
    if (thread.worker !== worker) return
    thread.worker = undefined
    const reason = crashReason(exit)
    // Resuming a task may submit new ones to this thread: take the lost ones out first.
    const lost = [...thread.pending]
    thread.pending.clear()
    for (const [id, pending] of lost) {
      this.ended(id)
      pending.resume(Effect.fail(new WorkerCrashError({ task: pending.run.def.name, thread: thread.index, reason })))
    }
  }

  /** Sends an interruption for a group body running on the thread of `lane`. */
  interruptBody(lane: number, group: number): void {
    this.threads[lane % this.threads.length]!.send([Protocol.InterruptBody, group])
  }
}

const decode = (run: Run, wire: WireExit): Effect.Effect<unknown, unknown> => {
  try {
    return run.def.portable!.decodeExit(wire)
  } catch (error) {
    return Effect.die(new Error(`Task "${run.def.name}" sent back a result that cannot be decoded: ${String(error)}`))
  }
}

/** Says how a worker died, from what NodeWorker reported. */
const crashReason = (exit: Exit.Exit<never, WorkerError>): string => {
  if (exit._tag === "Success") return "stopped"
  const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  if (error === undefined) return "was stopped"
  const workerError = (error as { readonly error: WorkerError }).error
  const cause = workerError.reason.cause as { readonly code?: string; readonly message?: string } | undefined
  if (cause?.code === "ERR_WORKER_OUT_OF_MEMORY") return "ran out of memory"
  if (cause?.message !== undefined) return `crashed: ${cause.message}`
  return workerError.reason.message.replace("The worker has exited", "exited")
}

/** Builds the threads' pool in the current scope. No thread starts until a portable task runs. */
export const make = Effect.fnUntraced(function*(options: ThreadOptions, host: ThreadHost) {
  const runFork = yield* FiberSet.makeRuntime<never, unknown, unknown>()
  const platform = yield* Effect.provide(Worker.WorkerPlatform.useSync((platform) => platform), NodeWorker.layerPlatform)
  return new ThreadPool(options, host, platform, runFork as <A, E>(effect: Effect.Effect<A, E>) => unknown)
})

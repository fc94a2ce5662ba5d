/**
 * The pool's worker threads, on `effect/workers` and `NodeWorker`.
 *
 * An attempt goes to the least-loaded thread; worker-local state lives with
 * the task on whichever thread runs it, so no task is pinned to a thread.
 * Tasks dispatched in the same tick travel in one message per thread (up to a
 * size cap); results come back as they are ready. The threads start together
 * with the first portable task (or when the pool is built, with `warmUp`),
 * each importing the task modules known so far.
 *
 * Faults:
 * - A thread that dies sends its tasks again, each alone on a thread, so
 *   that a crash costs the tasks that did not cause it nothing but time. A
 *   task that crashes a thread while alone on it is the culprit; at
 *   `crashLimit` crashes it fails with `WorkerCrashError`. Threads that keep
 *   dying restart after a growing pause.
 * - An interrupted attempt (a timeout, a failure elsewhere) ends only when its
 *   thread says its finalizers have run, so its lane is free only then; a
 *   thread that does not let go within a grace period is stopped and replaced.
 * - Closing asks each thread to release its worker-local instances and end,
 *   and stops the ones that do not within the grace period.
 *
 * @internal
 */
import * as NodeWorker from "@effect/platform-node/NodeWorker"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Worker from "effect/workers/Worker"
import type { WorkerError } from "effect/workers/WorkerError"
import type * as WorkerRunner from "effect/workers/WorkerRunner"
import * as WorkerThreads from "node:worker_threads"
import { TaskPayloadError, WorkerCrashError } from "../TaskError.ts"
import type { AskingThreads } from "./answers.ts"
import type { Executor } from "./executor.ts"
import * as Protocol from "./protocol.ts"
import { transferablesOf } from "./portable.ts"
import { registeredModules } from "./registry.ts"
import type { Run, RunGroup } from "./run.ts"
import * as Telemetry from "./telemetry.ts"
import * as ThreadTelemetry from "./threadTelemetry.ts"
import type { WireExit } from "./wire.ts"

// `@effect/platform-node` needs Node 22.19 or later. On older versions a task
// module would also lack `import.meta.main` and native TypeScript, and a
// program would misbehave without a word: say so at import instead.
const [major = 0, minor = 0] = process.versions.node.split(".").map(Number)
if (major < 22 || (major === 22 && minor < 19)) {
  throw new Error(`effect-lateral needs Node.js 22.19 or later; this is Node.js ${process.versions.node}.`)
}

export interface ThreadOptions {
  readonly threads: number
  readonly maxWorkers: number
  readonly resourceLimits: WorkerThreads.ResourceLimits | undefined
  /** How many times one task may crash a thread before it fails. */
  readonly crashLimit: number
  /** Start the threads at once, not with the first portable task. */
  readonly warmUp: boolean
}

/** What the threads need from the pool: answers to their tasks' questions, and ids for groups. */
export interface ThreadHost {
  readonly answer: (question: Protocol.Question, threads: AskingThreads) => Effect.Effect<Protocol.WireReply>
  /** The id a thread knows `group` by, until `releaseGroup`. */
  readonly groupId: (group: RunGroup) => number
  readonly releaseGroup: (id: number) => void
}

/** The data a worker thread is started with. */
export interface WorkerData {
  readonly lateral: true
  readonly thread: number
  readonly maxWorkers: number
  /** Task modules to import at once, before their first task arrives. */
  readonly preload: ReadonlyArray<string>
}

/**
 * Whether this is one of a pool's worker threads. A pool made here (say, by a
 * task module that runs its program when imported) gets no threads of its own,
 * so a mistake cannot start threads without end.
 */
export const insideWorkerThread: boolean = (WorkerThreads.workerData as WorkerData | undefined)?.lateral === true

// The entry has this module's extension: `.ts` from source, `.js` from a build.
const entry = new URL(`./workerEntry${import.meta.url.slice(import.meta.url.lastIndexOf("."))}`, import.meta.url)

/** How long an interrupted task, or a closing thread, may take to let go before its thread is stopped. */
const grace = Duration.seconds(1)

/**
 * How many attempts one thread holds at most (sent, or in the batch about to
 * be sent): deep enough that a message carries many tiny tasks, shallow
 * enough that a thread's backlog stays short.
 */
const window = 64

/** A message is sent once its payloads reach this many bytes, however many tasks it holds. */
const messageBytes = 256 * 1024

/** The pause before a thread that died starts again: doubling with each crash in a row. */
const restartPause = (crashes: number) => Duration.millis(Math.min(25 * 2 ** (crashes - 1), 2_000))

/** One attempt on its way to a thread, there, or being interrupted, until it ends. */
interface Pending {
  readonly id: number
  readonly run: Run
  /** Gives the run's lane up once the attempt is on a thread; undefined once done, or for tasks that keep it. */
  release: (() => void) | undefined
  readonly group: number
  readonly resume: (effect: Effect.Effect<unknown, unknown>) => void
  /** The thread that holds it; undefined while it waits for one. */
  thread: Thread | undefined
  /** Crashes of threads it ran on alone. */
  crashes: number
  /** It runs alone on its thread: a thread that dies now proves it the culprit. */
  alone: boolean
  /** Set while its interruption waits for its thread to say it has ended. */
  interrupted: (() => void) | undefined
}

type ThreadWorker = Worker.Worker<Protocol.FromWorker, Protocol.ToWorker>

/** One of the pool's threads, and the worker that currently serves it. */
class Thread {
  readonly index: number
  worker: ThreadWorker | undefined = undefined
  /** The worker's Node thread, to post to once it is ready. */
  port: WorkerThreads.Worker | undefined = undefined
  /** Set once the worker has said it is ready; tasks wait in `batch` until then. */
  ready = false
  /** Waiting to start again after a crash. */
  restarting = false
  /** Crashes since a task last finished here. */
  crashes = 0
  /** Set when its worker crashed: its next start is a respawn. */
  respawnDue = false
  /** Set when the pool stops the thread (a stuck task, the pool closing): not a crash. */
  stopping = false
  /** Whether it has been started at least once (the others start after the first is ready). */
  everStarted = false
  readonly pending = new Map<number, Pending>()
  /** A task that runs alone here: nothing else is sent meanwhile. */
  alone: Pending | undefined = undefined
  batch: Protocol.RunColumns = emptyBatch()
  batchBytes = 0
  /** Buffers the batch's payloads move to the thread (tasks with `transfer`). */
  transfers: Array<ArrayBuffer> = []
  flushScheduled = false
  constructor(index: number) {
    this.index = index
  }

  /** Whether the thread takes tasks now (it may still be starting: they wait in its batch). */
  get open(): boolean {
    return this.worker !== undefined && this.alone === undefined
  }

  /**
   * Posts a message in the workers' own framing (`WorkerRunner.PlatformMessage`).
   * Posting ourselves, once the worker is ready, makes a value that cannot be
   * copied fail here, for its task, instead of inside `Worker.send`'s buffer,
   * which would stop the whole worker.
   */
  send(message: Protocol.ToWorker, transfers?: ReadonlyArray<ArrayBuffer>): unknown {
    if (!this.ready || this.port === undefined) return undefined
    try {
      this.port.postMessage([0, message] satisfies WorkerRunner.PlatformMessage<Protocol.ToWorker>, transfers)
      return undefined
    } catch (error) {
      return error
    }
  }
}

const emptyBatch = (): Protocol.RunColumns => ({ ids: [], modules: [], names: [], groups: [], payloads: [], callers: [] })

const column = <K extends keyof Protocol.RunColumns>(batch: Protocol.RunColumns, key: K, i: number) => [batch[key][i]] as Protocol.RunColumns[K]

/** About how many bytes a payload takes in a message: what matters is large binary data. */
const sizeOf = (value: unknown): number =>
  ArrayBuffer.isView(value) ? value.byteLength : typeof value === "string" ? value.length : 64

export class ThreadPool implements Executor, AskingThreads {
  private readonly options: ThreadOptions
  private readonly host: ThreadHost
  private readonly workers: Array<Thread>
  private readonly platform: Worker.WorkerPlatform["Service"]
  private readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  /** The context the pool was built in, whose metric registry counts crashes. */
  private readonly context: Context.Context<never>
  private nextTask = 0
  private nextWorker = 0
  private started = false
  private closing = false
  /** Attempts no thread can take now (every thread is busy with a task alone, or restarting). */
  private readonly waiting: Array<Pending> = []
  private readonly endCallbacks = new Map<number, Array<() => void>>()

  constructor(
    options: ThreadOptions,
    host: ThreadHost,
    platform: Worker.WorkerPlatform["Service"],
    runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>,
    context: Context.Context<never>
  ) {
    this.options = options
    this.host = host
    this.platform = platform
    this.runFork = runFork
    this.context = context
    this.workers = Array.from({ length: options.threads }, (_, i) => new Thread(i))
  }

  /**
   * Starts the threads: the first at once, the others once it is ready, so
   * that they do not slow its start on a busy machine, and the first result
   * comes as soon as one thread can give it.
   */
  private startFirst(): void {
    if (this.started) return
    this.started = true
    this.start(this.workers[0]!)
  }

  /** Starts every thread at once, and waits until none is still starting (`warmUp`). */
  readonly warmUp: Effect.Effect<void> = Effect.suspend(() => {
    this.started = true
    for (const thread of this.workers) if (thread.worker === undefined) this.start(thread)
    return Effect.callback<void>((resume) => {
      const check = () => {
        if (this.workers.some((thread) => thread.worker !== undefined && !thread.ready)) return false
        resume(Effect.void)
        return true
      }
      if (!check()) this.settledWaiters.push(check)
    })
  })

  /** Waiters of `warmUp`: each returns true once it is done. */
  private settledWaiters: Array<() => boolean> = []

  /** One attempt of `run` on a thread; interrupting it interrupts the task there and waits for it to end. */
  readonly attempt = (run: Run, release: () => void): Effect.Effect<unknown, unknown> =>
    Effect.callback<unknown, unknown>((resume) => {
      this.startFirst()
      const pending: Pending = {
        id: ++this.nextTask,
        run,
        // A task with a layer keeps its lane, so that its services stay bound by `maxWorkers`.
        release: run.def.portable!.layer === undefined ? release : undefined,
        group: this.host.groupId(run.group),
        resume,
        thread: undefined,
        crashes: 0,
        alone: false,
        interrupted: undefined
      }
      this.onDispatchEnd(pending.id, () => this.host.releaseGroup(pending.group))
      this.place(pending)
      return Effect.suspend(() => this.interrupt(pending))
    })

  /** Fibers waiting for a thread to be ready. */
  private readyWaiters: Array<() => void> = []

  readonly ready: Effect.Effect<void> = Effect.callback<void>((resume) => {
    this.startFirst()
    if (this.workers.some((thread) => thread.ready)) return resume(Effect.void)
    // Threads that died start again when a task needs them: this task does.
    if (!this.workers.some((thread) => thread.worker !== undefined || thread.restarting)) this.start(this.workers[0]!)
    const wake = () => resume(Effect.void)
    this.readyWaiters.push(wake)
    return Effect.sync(() => {
      this.readyWaiters = this.readyWaiters.filter((waiter) => waiter !== wake)
    })
  })

  /**
   * A thread became ready, or one stopped starting: waiters of `ready` go on
   * once one is ready (or none is starting any more); the threads not started
   * yet start once the first is ready.
   */
  private wakeReady(): void {
    const starting = this.workers.some((thread) => thread.worker !== undefined && !thread.ready)
    const anyReady = this.workers.some((thread) => thread.ready)
    if (!starting || anyReady) for (const wake of this.readyWaiters.splice(0)) wake()
    this.settledWaiters = this.settledWaiters.filter((done) => !done())
    if (anyReady && !this.closing) {
      for (const thread of this.workers) if (!thread.everStarted) this.start(thread)
    }
  }

  /**
   * Sends `pending` to the least-loaded thread that takes it, ready ones
   * first (so that a task does not wait for a thread to start while another
   * could run it), starting one that is down if none can; or keeps it waiting.
   */
  private place(pending: Pending): void {
    let best: Thread | undefined
    for (const thread of this.workers) {
      if (!thread.open || thread.pending.size >= window || (pending.alone && thread.pending.size > 0)) continue
      if (
        best === undefined || (thread.ready && !best.ready) ||
        (thread.ready === best.ready && thread.pending.size < best.pending.size)
      ) best = thread
    }
    if (best === undefined) {
      best = this.workers.find((thread) => thread.worker === undefined && !thread.restarting)
      if (best === undefined || this.closing) return void this.waiting.push(pending)
      this.start(best)
    }
    pending.thread = best
    Telemetry.onThread(pending.run, best.index)
    best.pending.set(pending.id, pending)
    if (pending.alone) best.alone = pending
    this.enqueue(best, pending)
    // On a thread, the attempt is bound by the thread's window: its lane is free for other tasks.
    const release = pending.release
    pending.release = undefined
    release?.()
  }

  /** Places what waits, oldest first, as far as threads take it. */
  private placeWaiting(): void {
    if (this.waiting.length === 0) return
    const waiting = this.waiting.splice(0)
    for (let i = 0; i < waiting.length; i++) {
      const pending = waiting[i]!
      this.place(pending)
      // Once one that need not run alone goes back to waiting, no thread has room for the rest:
      // they wait behind it, not placed one by one in vain (which made each result cost as much
      // as there were waiting tasks).
      if (!pending.alone && this.waiting[this.waiting.length - 1] === pending) {
        for (let rest = i + 1; rest < waiting.length; rest++) this.waiting.push(waiting[rest]!)
        return
      }
    }
  }

  private enqueue(thread: Thread, pending: Pending): void {
    const batch = thread.batch
    const run = pending.run
    batch.ids.push(pending.id)
    batch.modules.push(run.def.portable!.module)
    batch.names.push(run.def.name)
    batch.groups.push(pending.group)
    batch.payloads.push(run.encoded)
    batch.callers.push(ThreadTelemetry.callerOf(run))
    thread.batchBytes += sizeOf(run.encoded)
    if (run.def.portable!.transfer) transferablesOf(run.encoded, thread.transfers)
    if (!thread.ready) return
    if (thread.batchBytes >= messageBytes) return this.flush(thread)
    if (!thread.flushScheduled) {
      // After the I/O of this turn: the results that came in together dispatch their successors together.
      thread.flushScheduled = true
      setImmediate(() => this.flush(thread))
    }
  }

  /** Sends the thread's batch; a task whose payload cannot be cloned fails alone, with `TaskPayloadError`. */
  private flush(thread: Thread): void {
    thread.flushScheduled = false
    const batch = thread.batch
    if (!thread.ready || batch.ids.length === 0) return
    const transfers = thread.transfers
    thread.batch = emptyBatch()
    thread.batchBytes = 0
    thread.transfers = []
    if (thread.send([Protocol.RunBatch, batch], transfers) === undefined) return
    // Something in the batch cannot be sent: send each task alone, so that only that one fails.
    for (let i = 0; i < batch.ids.length; i++) {
      const one: Protocol.RunColumns = {
        ids: column(batch, "ids", i),
        modules: column(batch, "modules", i),
        names: column(batch, "names", i),
        groups: column(batch, "groups", i),
        payloads: column(batch, "payloads", i),
        callers: column(batch, "callers", i)
      }
      const pending = thread.pending.get(batch.ids[i]!)!
      const error = thread.send([Protocol.RunBatch, one], pending.run.def.portable!.transfer ? transferablesOf(one.payloads[0]) : [])
      if (error !== undefined) {
        this.end(pending, (run) =>
          Effect.fail(new TaskPayloadError({ task: run.def.name, reason: String(error) })))
      }
    }
  }

  /**
   * An attempt is interrupted: dropped if it has not left yet; otherwise its
   * thread is told, and the attempt ends when the thread says the task has
   * (its finalizers have run), or when the thread is stopped after `grace`.
   */
  private interrupt(pending: Pending): Effect.Effect<void> {
    const thread = pending.thread
    if (thread === undefined) {
      const index = this.waiting.indexOf(pending)
      if (index >= 0) this.waiting.splice(index, 1)
      this.ended(pending.id)
      return Effect.void
    }
    if (!thread.pending.has(pending.id)) return Effect.void
    const index = thread.batch.ids.indexOf(pending.id)
    if (index >= 0) {
      for (const key of Object.keys(thread.batch) as Array<keyof Protocol.RunColumns>) thread.batch[key].splice(index, 1)
      this.release(thread, pending)
      return Effect.void
    }
    return Effect.callback<void>((resume) => {
      pending.interrupted = () => resume(Effect.void)
      thread.send([Protocol.Interrupt, pending.id])
      this.runFork(Effect.andThen(
        Effect.sleep(grace),
        Effect.sync(() => {
          // Still there: its thread runs code that does not yield. Stop it; the others are sent again.
          if (pending.interrupted !== undefined && thread.pending.get(pending.id) === pending) this.stop(thread)
        })
      ))
    })
  }

  /** Ends a pending attempt with `result` (or, if it was interrupted, lets its interruption go on). */
  private end(pending: Pending, result: (run: Run) => Effect.Effect<unknown, unknown>): void {
    const thread = pending.thread
    if (thread !== undefined) this.release(thread, pending)
    if (pending.interrupted !== undefined) pending.interrupted()
    else pending.resume(result(pending.run))
  }

  /** Takes `pending` off its thread, which may then take more. */
  private release(thread: Thread, pending: Pending): void {
    thread.pending.delete(pending.id)
    if (thread.alone === pending) thread.alone = undefined
    this.ended(pending.id)
    this.placeWaiting()
  }

  /** How many threads have a worker now. */
  readonly threads = (): number => this.workers.filter((thread) => thread.worker !== undefined).length

  /** The run behind a task id a worker thread refers to. */
  readonly runOf = (id: number): Run | undefined => {
    for (const thread of this.workers) {
      const pending = thread.pending.get(id)
      if (pending) return pending.run
    }
    return undefined
  }

  /** Calls `f` once the task `id` has ended on its thread (or its thread died). */
  readonly onDispatchEnd = (id: number, f: () => void): void => {
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

  /** Interrupts the body of group `group`, which runs for task `id` on its thread. */
  readonly interruptBody = (id: number, group: number): void => {
    for (const thread of this.workers) {
      if (thread.pending.has(id)) return void thread.send([Protocol.InterruptBody, group])
    }
  }

  private start(thread: Thread): void {
    const workerData: WorkerData = {
      lateral: true,
      thread: thread.index,
      maxWorkers: this.options.maxWorkers,
      preload: registeredModules()
    }
    const spawn = () =>
      thread.port = new WorkerThreads.Worker(entry, {
        workerData,
        ...(this.options.resourceLimits ? { resourceLimits: this.options.resourceLimits } : {})
      })
    const worker = Effect.runSync(
      this.platform.spawn<Protocol.FromWorker, Protocol.ToWorker>(++this.nextWorker).pipe(
        Effect.provideService(Worker.Spawner, spawn)
      )
    )
    thread.worker = worker
    if (thread.respawnDue) {
      thread.respawnDue = false
      Telemetry.threadRespawned(this.context)
    }
    thread.everStarted = true
    thread.ready = false
    thread.restarting = false
    thread.stopping = false
    const ready = Effect.sync(() => {
      thread.ready = true
      this.flush(thread)
      this.wakeReady()
    })
    this.runFork(
      worker.run((message) => this.receive(thread, message), { onSpawn: ready }).pipe(
        Effect.onExit((exit) => Effect.sync(() => this.lost(thread, worker, exit)))
      )
    )
    this.placeWaiting()
  }

  private receive(thread: Thread, message: Protocol.FromWorker): Effect.Effect<void> {
    if (message[0] === Protocol.Done) {
      const [, ids, exits, telemetry] = message
      thread.crashes = 0
      if (telemetry !== undefined) {
        for (const [id, recorded] of telemetry) {
          const pending = thread.pending.get(id)
          if (pending !== undefined) ThreadTelemetry.replay(pending.run, recorded)
        }
      }
      for (let i = 0; i < ids.length; i++) {
        const pending = thread.pending.get(ids[i]!)
        if (pending !== undefined) this.end(pending, (run) => decode(run, exits[i]!))
      }
      return Effect.void
    }
    const [, request, question] = message
    const worker = thread.worker
    // Answered in the pool's own fibers, not the worker's: an answer may wait
    // on tasks, and must not hold up the handling of the worker's death.
    const answering = this.runFork(Effect.map(this.host.answer(question, this), (reply) => {
      // A thread that died since it asked gets no answer.
      if (thread.worker === worker) thread.send([Protocol.Reply, request, reply])
    }))
    // An answer nobody waits for any more stops: its task has ended.
    if (question._tag !== "stats") this.onDispatchEnd(question.parent, () => answering.interruptUnsafe())
    return Effect.void
  }

  /** Stops a thread whose task does not let go; it is replaced, and its other tasks sent again. */
  private stop(thread: Thread): void {
    thread.stopping = true
    void thread.port?.terminate()
  }

  /**
   * The thread's worker is gone. What it held is sent again, each task alone,
   * unless the pool stopped it (a stuck task: the others are innocent) or is
   * closing. A task that crashed a thread alone counts a crash, and fails at
   * `crashLimit`. The thread starts again, after a pause if it keeps dying.
   */
  private lost(thread: Thread, worker: ThreadWorker, exit: Exit.Exit<never, WorkerError>): void {
    if (thread.worker !== worker) return
    const crashed = !thread.stopping
    // Counted first: failing the tasks it held below may close the pool at once.
    if (crashed) Telemetry.threadCrashed(this.context)
    thread.worker = undefined
    thread.port = undefined
    thread.ready = false
    thread.batch = emptyBatch()
    thread.batchBytes = 0
    thread.transfers = []
    thread.alone = undefined
    const held = [...thread.pending.values()]
    thread.pending.clear()
    this.wakeReady()
    const reason = crashReason(exit)
    for (const pending of held) {
      pending.thread = undefined
      this.ended(pending.id)
      if (pending.interrupted !== undefined) {
        pending.interrupted()
        continue
      }
      // Alone on the thread, the crash was its own.
      if (crashed && (pending.alone || held.length === 1)) pending.crashes++
      if (pending.crashes >= this.options.crashLimit || this.closing) {
        pending.resume(Effect.fail(
          new WorkerCrashError({ task: pending.run.def.name, thread: thread.index, reason, crashes: pending.crashes })
        ))
        continue
      }
      // After a crash every task it held is a suspect, and runs alone until it is cleared.
      pending.alone = crashed
      this.waiting.push(pending)
    }
    if (this.closing) return
    if (crashed) {
      thread.crashes++
      thread.respawnDue = true
    }
    // Nothing to do: the thread starts again when a task needs it.
    if (this.waiting.length === 0) return
    if (!crashed) return this.start(thread)
    thread.restarting = true
    this.runFork(Effect.andThen(
      Effect.sleep(restartPause(thread.crashes)),
      Effect.sync(() => {
        if (!this.closing && thread.restarting) this.start(thread)
      })
    ))
    this.placeWaiting()
  }

  /**
   * Closes every thread: each releases its worker-local instances and ends;
   * one that does not within `grace` (a task module's timer, a stuck task) is stopped.
   */
  readonly close: Effect.Effect<void> = Effect.suspend(() => {
    this.closing = true
    return Effect.forEach(this.workers, (thread) => {
      const port = thread.port
      if (port === undefined) return Effect.void
      thread.stopping = true
      return Effect.callback<void>((resume) => {
        port.once("exit", () => resume(Effect.void))
        // The workers' own close message (`WorkerRunner.PlatformMessage`).
        port.postMessage([1])
      }).pipe(
        Effect.timeoutOrElse({ duration: grace, orElse: () => Effect.promise(() => port.terminate()) })
      )
    }, { concurrency: "unbounded", discard: true })
  })
}

const decode = (run: Run, wire: WireExit): Effect.Effect<unknown, unknown> => {
  try {
    return run.def.portable!.decodeExit(wire)
  } catch (error) {
    return Effect.die(new Error(`Task "${run.def.name}" sent back a result that cannot be decoded: ${String(error)}`))
  }
}

/** Says how a worker died, from what NodeWorker reported (the run of a worker only ends by failing). */
const crashReason = (exit: Exit.Exit<never, WorkerError>): string => {
  const error = exit._tag === "Failure" ? exit.cause.reasons.find((reason) => reason._tag === "Fail") : undefined
  if (error === undefined) return "was stopped"
  const workerError = (error as { readonly error: WorkerError }).error
  const cause = workerError.reason.cause as { readonly code?: string; readonly message?: string } | undefined
  if (cause?.code === "ERR_WORKER_OUT_OF_MEMORY") return "ran out of memory"
  if (cause?.message) return `crashed: ${cause.message}`
  return workerError.reason.message.replace("The worker has exited", "exited")
}

/** Builds the threads' pool in the current scope; its close comes before the workers' own. */
export const make = Effect.fnUntraced(function*(options: ThreadOptions, host: ThreadHost) {
  const runFork = yield* FiberSet.makeRuntime<never, unknown, unknown>()
  const platform = yield* Effect.provide(Worker.WorkerPlatform.useSync((platform) => platform), NodeWorker.layerPlatform)
  const pool = new ThreadPool(options, host, platform, runFork as <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>, yield* Effect.context<never>())
  yield* Effect.addFinalizer(() => pool.close)
  if (options.warmUp) yield* pool.warmUp
  return pool
})

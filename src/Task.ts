/**
 * Tasks: functions whose calls run on the pool while the caller goes on.
 *
 * `Task.make(name, fn)` turns `fn` into a task. Calling the task submits one
 * run of `fn` to the `TaskPool` in context and returns a `Handle` at once
 * (under `TaskPool.serial`, after running it inline). Most programs ignore the
 * handle: the pool's scope waits for every task. Use `Task.await` for one
 * result, `Task.group` to wait for a batch and collect its results.
 *
 * Errors: the first failure of a task fails the pool with that task's own
 * error, which surfaces at the next submit, `TaskPool.join`, group end, or
 * when the pool's scope closes. The error type of a task appears at each call,
 * so a program's error type already lists every error its tasks can raise.
 * Inside `Task.group`, a failure belongs to the group: the group fails with it
 * at once, and the pool goes on if the caller handles it.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Schedule from "effect/Schedule"
import type * as Schema from "effect/Schema"
import { type Engine, type Handle as RunHandle, HandleKey, type TaskDef } from "./internal/model.ts"
import { Portable, register } from "./internal/portable.ts"
import { type PoolTimeoutError, type TaskPayloadError, TaskTimeoutError, type WorkerCrashError } from "./TaskError.ts"
import { TaskPool } from "./TaskPool.ts"

const TypeId: unique symbol = Symbol.for("effect-lateral/Task")

/**
 * A task: call it to submit a run of its function.
 *
 * @category models
 * @since 0.1.0
 */
export interface Task<in Args extends ReadonlyArray<any>, out A, out E = never, out R = never> {
  (...args: Args): Effect.Effect<Handle<A, E>, E, R | TaskPool>
  /** The name given to `Task.make`, used in errors and traces. */
  readonly name: string
  readonly [TypeId]: TaskDef
}

/**
 * A submitted task. Await it with `Task.await`, or ignore it.
 *
 * @category models
 * @since 0.1.0
 */
export interface Handle<out A, out E = never> extends RunHandle<A, E> {}

/**
 * Options of `Task.make`.
 *
 * - `timeout`: bounds each attempt; an attempt that runs longer fails with
 *   `TaskTimeoutError`.
 * - `retry`: an Effect `Schedule` that retries a failed attempt (timeouts included).
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<E> {
  readonly timeout?: Duration.Input | undefined
  readonly retry?: Schedule.Schedule<unknown, E> | undefined
}

/**
 * Options of a portable task: one that can run on the pool's worker threads.
 *
 * - `module`: the module the task is declared in, `import.meta.url`. A worker
 *   thread imports it to find the task, so keep the module free of top-level
 *   work (or guard it with `if (import.meta.main)`).
 * - `payload`, `success`, `error`: Schemas of the task's one argument, its
 *   result and its errors; values cross threads in their encoded form.
 * - `layer`: the services the task needs, built once per lane, on the lane's
 *   thread, and released when the pool closes.
 *
 * @category models
 * @since 0.1.0
 */
export type PortableOptions<P, A, E, R> =
  & {
    readonly module: string
    readonly payload: Schema.Codec<P, any>
    readonly success: Schema.Codec<A, any>
    readonly timeout?: Duration.Input | undefined
    readonly retry?: Schedule.Schedule<unknown, E | TaskTimeoutError | WorkerCrashError> | undefined
  }
  & ([OwnErrors<E>] extends [never] ? { readonly error?: Schema.Codec<never, any> | undefined }
    : { readonly error: Schema.Codec<OwnErrors<E>, any> })
  & ([R] extends [never] ? { readonly layer?: Layer.Layer<never, any> | undefined } : { readonly layer: Layer.Layer<R, any> })

/** A task's errors other than effect-lateral's own, which cross threads without a schema. */
type OwnErrors<E> = Exclude<E, TaskTimeoutError | PoolTimeoutError | TaskPayloadError | WorkerCrashError>

/** The error a task adds when it has a timeout. */
type TimeoutError<O> = O extends { readonly timeout: Duration.Input } ? TaskTimeoutError : never

/**
 * Declares a task.
 *
 * **Example** (A task, called in a loop)
 *
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Task, TaskPool } from "effect-lateral"
 *
 * const load = Task.make(
 *   "load",
 *   (id: number) => Effect.log(`loading ${id}`),
 *   { timeout: "10 seconds", retry: Schedule.exponential("100 millis").pipe(Schedule.upTo({ times: 3 })) }
 * )
 *
 * const program = Effect.gen(function*() {
 *   for (let id = 0; id < 100; id++) yield* load(id)
 * }).pipe(Effect.provide(TaskPool.layer()))
 * ```
 *
 * **Example** (A portable task, which runs on worker threads)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { createHash } from "node:crypto"
 * import { Task } from "effect-lateral"
 *
 * export const sha256 = Task.make(
 *   "sha256",
 *   (data: Uint8Array) => Effect.sync(() => createHash("sha256").update(data).digest("hex")),
 *   { module: import.meta.url, payload: Schema.Uint8Array, success: Schema.String }
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make: {
  <P, A, E, R>(
    name: string,
    fn: (payload: NoInfer<P>) => Effect.Effect<NoInfer<A>, E, R>,
    options: PortableOptions<P, A, NoInfer<E>, Exclude<NoInfer<R>, TaskPool>> & { readonly timeout: Duration.Input }
  ): Task<[payload: P], A, E | TaskPayloadError | WorkerCrashError | TaskTimeoutError>
  <P, A, E, R>(
    name: string,
    fn: (payload: NoInfer<P>) => Effect.Effect<NoInfer<A>, E, R>,
    options: PortableOptions<P, A, NoInfer<E>, Exclude<NoInfer<R>, TaskPool>>
  ): Task<[payload: P], A, E | TaskPayloadError | WorkerCrashError>
  <Args extends ReadonlyArray<any>, A, E, R, const O extends Options<NoInfer<E> | TaskTimeoutError> = {}>(
    name: string,
    fn: (...args: Args) => Effect.Effect<A, E, R>,
    options?: O
  ): Task<Args, A, E | TimeoutError<O>, R>
} = (
  name: string,
  fn: (...args: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown, unknown>,
  options?: Options<any> & Partial<PortableOptions<unknown, unknown, unknown, unknown>>
): any => {
  const portable = options?.module === undefined ? undefined : new Portable(name, options as PortableOptionsOf)
  const def: TaskDef = {
    name,
    run: runner(fn, portable),
    attempts: attempts(name, options),
    retries: options?.retry !== undefined,
    portable
  }
  if (portable) register(def as TaskDef & { readonly portable: Portable })
  // The hot path: one effect per call, the pool read straight from the fiber.
  const task = (...args: ReadonlyArray<unknown>) =>
    Effect.withFiber((fiber) => Context.getUnsafe(fiber.context, TaskPool).submit(fiber, def, args))
  Object.defineProperty(task, "name", { value: name })
  Object.defineProperty(task, TypeId, { value: def })
  return task as unknown as Task<ReadonlyArray<unknown>, unknown, unknown, unknown>
}

type PortableOptionsOf = ConstructorParameters<typeof Portable>[1]

/** One attempt in this thread; a portable task's layer is built once per lane. */
const runner = (
  fn: (...args: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown, unknown>,
  portable: Portable | undefined
): TaskDef["run"] => {
  const layer = portable?.layer
  if (layer === undefined) return (args) => fn(...args)
  const services = TaskPool.use((pool) => pool.local(layer, Layer.build(layer)))
  return (args) => Effect.flatMap(services, (context) => Effect.provideContext(Effect.suspend(() => fn(...args)), context))
}

/** Applies `timeout` to each attempt, then `retry` around the attempts. */
const attempts = (name: string, options: Options<any> | undefined): TaskDef["attempts"] => {
  const timeout = options?.timeout === undefined ? undefined : Duration.fromInputUnsafe(options.timeout)
  const retry = options?.retry
  if (timeout === undefined && retry === undefined) return (attempt) => attempt
  const onTimeout = () => Effect.fail(new TaskTimeoutError({ task: name, timeout: Duration.format(timeout!) }))
  return (attempt) => {
    if (timeout !== undefined) attempt = Effect.timeoutOrElse(attempt, { duration: timeout, orElse: onTimeout })
    return retry === undefined ? attempt : Effect.retry(attempt, retry)
  }
}

/**
 * Waits for a submitted task and returns its result, or fails with its error.
 * If the task was interrupted because the pool (or its group) failed, fails
 * with that failure. Inside a task, the waiting task gives its lane up while
 * it waits.
 *
 * **Example** (Using a task's result)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Task } from "effect-lateral"
 *
 * const square = Task.make("square", (n: number) => Effect.succeed(n * n))
 *
 * const program = Effect.gen(function*() {
 *   const handle = yield* square(7)
 *   return yield* Task.await(handle) // 49
 * })
 * ```
 *
 * @category waiting
 * @since 0.1.0
 */
const await_ = <A, E>(handle: Handle<A, E>): Effect.Effect<A, E> =>
  (handle as unknown as { readonly engine: Engine }).engine.await(handle) as Effect.Effect<A, E>

export { await_ as await }

/**
 * What `Task.group` returns: the body's value, and the results of the tasks
 * that ran in the group (unordered, as they finished), by task.
 *
 * @category models
 * @since 0.1.0
 */
export interface GroupResult<A> {
  readonly value: A
  readonly results: <B>(task: Task<any, B, any, any>) => ReadonlyArray<B>
}

/**
 * Runs `body` and waits for every task submitted inside it, and everything
 * those tasks submit. Groups nest and work inside tasks (a task that fans out
 * and waits gives its lane up while it waits, so even `maxWorkers: 1` cannot
 * deadlock).
 *
 * The first failure of one of the group's tasks interrupts the body and the
 * other tasks, and the group fails with that error at once. Handle it, and the
 * pool goes on.
 *
 * **Example** (Fan out, wait, use the results)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Task } from "effect-lateral"
 *
 * const fetchUser = Task.make("fetchUser", (id: number) => Effect.succeed({ id, name: `user ${id}` }))
 *
 * const program = Effect.gen(function*() {
 *   const group = yield* Task.group(Effect.gen(function*() {
 *     for (let id = 0; id < 10; id++) yield* fetchUser(id)
 *   }))
 *   const users = group.results(fetchUser) // 10 users, in completion order
 * })
 * ```
 *
 * @category waiting
 * @since 0.1.0
 */
export const group: <A, E, R>(body: Effect.Effect<A, E, R>) => Effect.Effect<GroupResult<A>, E, R | TaskPool> = Effect.fn(
  "Task.group"
)(function*<A, E, R>(body: Effect.Effect<A, E, R>) {
  const pool = yield* TaskPool
  const outcome = yield* pool.group(body)
  return {
    value: outcome.value,
    results: <B>(task: Task<any, B, any, any>) => outcome.successesOf(task[TypeId]) as ReadonlyArray<B>
  }
})

/**
 * Whether a value is a task made by `Task.make`.
 *
 * @category guards
 * @since 0.1.0
 */
export const isTask = (u: unknown): u is Task<ReadonlyArray<unknown>, unknown, unknown, unknown> =>
  typeof u === "function" && TypeId in u

/**
 * Whether a value is a task's handle.
 *
 * @category guards
 * @since 0.1.0
 */
export const isHandle = (u: unknown): u is Handle<unknown, unknown> => typeof u === "object" && u !== null && HandleKey in u

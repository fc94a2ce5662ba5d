/**
 * Tasks: functions whose calls run on the pool while the caller goes on.
 *
 * `Task.make(name, fn)` turns `fn` into a task. Calling the task submits one
 * run of `fn` to the `TaskPool` in context and returns a `Handle` at once
 * (under `TaskPool.serial`, after running it inline). Most programs ignore the
 * handle: the pool's scope waits for every task. Use `Task.await` for one
 * result, `Task.group` to wait for a batch and collect its results.
 *
 * Errors: a failure that escapes a task belongs to the task's group, or to the
 * pool when it has no group. It fails that group or pool at once (the other
 * tasks of that scope are interrupted) and surfaces, with the task's own
 * error type, at the scope's next submit, `TaskPool.join`, group end, or
 * close. `Task.await` returns it too, but handling it there does not un-fail
 * the scope: handle one task's failure inside the task, or around a
 * `Task.group`. The same holds under `TaskPool.serial`.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type * as Schedule from "effect/Schedule"
import type * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"
import { type Engine, type Handle as RunHandle, HandleKey } from "./internal/engine.ts"
import { durationOf, expected } from "./internal/options.ts"
import { Portable } from "./internal/portable.ts"
import { type PortableTaskDef, register } from "./internal/registry.ts"
import type { TaskDef } from "./internal/taskDef.ts"
import * as Telemetry from "./internal/telemetry.ts"
import type { PoolTimeoutError, TaskPayloadError, TaskTimeoutError, WorkerCrashError } from "./TaskError.ts"
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
 * - `layer`: the services the task needs, a worker-local resource: built on
 *   the thread the task runs on, held by a task until it ends, reused by the
 *   next, and released when the pool closes.
 * - `transfer`: the `ArrayBuffer`s of the encoded payload and result (and the
 *   buffers that typed arrays in them cover whole) move between threads
 *   instead of being copied: faster for large binary data, but the sender's
 *   buffers are emptied, so the caller must not use a payload's buffers after
 *   the call.
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
    readonly transfer?: boolean | undefined
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
  const timeout = options?.timeout === undefined ? undefined : durationOf(options.timeout)
  if (options?.timeout !== undefined && timeout === undefined) {
    throw new Cause.IllegalArgumentError(
      `Task.make("${name}"): timeout must be ${expected.duration}, got ${JSON.stringify(options.timeout) ?? String(options.timeout)}`
    )
  }
  const portable = options?.module === undefined ? undefined : new Portable(name, options as PortableOptionsOf)
  const def: TaskDef = { name, run: runner(fn, portable), timeout, retry: options?.retry, portable }
  if (portable) register(def as PortableTaskDef)
  // The hot path: one effect per call, the pool read straight from the fiber.
  const task = (...args: ReadonlyArray<unknown>) => Effect.withFiber((fiber) => poolOf(fiber).submit(fiber, def, args))
  Object.defineProperty(task, "name", { value: name })
  Object.defineProperty(task, TypeId, { value: def })
  return task as unknown as Task<ReadonlyArray<unknown>, unknown, unknown, unknown>
}

type PortableOptionsOf = ConstructorParameters<typeof Portable>[1]

// A loop submits from one fiber, whose context does not change between calls: the last lookup is
// kept (contexts are immutable, so the same context always holds the same pool).
let lastContext: Context.Context<never> | undefined = undefined
let lastPool: Engine | undefined = undefined

/** The pool in the fiber's context. */
const poolOf = (fiber: Fiber.Fiber<unknown, unknown>): Engine => {
  const context = fiber.context
  if (context !== lastContext) {
    lastPool = Context.getUnsafe(context, TaskPool)
    lastContext = context
  }
  return lastPool!
}

/** One attempt in this thread; a portable task's layer is a worker-local resource. */
const runner = (
  fn: (...args: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown, unknown>,
  portable: Portable | undefined
): TaskDef["run"] => {
  const layer = portable?.layer
  if (layer === undefined) return (args) => fn(...args)
  const services = TaskPool.use((pool) => pool.local(layer, Layer.build(layer)))
  return (args) => Effect.flatMap(services, (context) => Effect.provideContext(Effect.suspend(() => fn(...args)), context))
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
 * The type of a task's successful result.
 *
 * @category models
 * @since 0.2.0
 */
export type Success<T> = T extends Task<any, infer A, any, any> ? A : never

/**
 * What `Task.group(body, { results })` returns: the body's value, and the
 * results of the listed tasks that ran in the group (unordered, as they
 * finished).
 *
 * @category models
 * @since 0.1.0
 */
export interface GroupResult<A, T extends Task<any, any, any, any>> {
  readonly value: A
  readonly results: <K extends T>(task: K) => ReadonlyArray<Success<K>>
}

/**
 * Options of `Task.group`. `results`: the tasks whose results the group keeps
 * for `GroupResult.results`. A group keeps no results unless asked, so a group
 * of a million tasks holds no more memory than the tasks running at once.
 *
 * @category models
 * @since 0.2.0
 */
export interface GroupOptions<T extends ReadonlyArray<Task<any, any, any, any>>> {
  readonly results: T
}

/**
 * Runs `body` and waits for every task submitted inside it, and everything
 * those tasks submit; returns the body's value. With `{ results: [task, ...] }`
 * it also keeps the results of those tasks. Groups nest and work inside tasks
 * (a task that fans out and waits gives its lane up while it waits, so even
 * `maxWorkers: 1` cannot deadlock).
 *
 * A failure of one of the group's tasks belongs to the group: it interrupts
 * the body and the other tasks, and the group fails with that error at once.
 * Handle it around the group, and the pool goes on.
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
 *   const group = yield* Task.group(
 *     Effect.forEach([1, 2, 3], (id) => fetchUser(id), { discard: true }),
 *     { results: [fetchUser] }
 *   )
 *   const users = group.results(fetchUser) // 3 users, in completion order
 * })
 * ```
 *
 * **Example** (Handling a group's failure)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Task } from "effect-lateral"
 *
 * class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { id: Schema.Number }) {}
 * const lookup = Task.make("lookup", (id: number) => id === 3 ? Effect.fail(new NotFound({ id })) : Effect.void)
 *
 * const program = Task.group(Effect.forEach([1, 2, 3], (id) => lookup(id), { discard: true })).pipe(
 *   Effect.catchTag("NotFound", (error) => Effect.log(`no item ${error.id}`))
 * )
 * ```
 *
 * @category waiting
 * @since 0.1.0
 */
export const group: {
  <const T extends ReadonlyArray<Task<any, any, any, any>>>(
    options: GroupOptions<T>
  ): <A, E, R>(body: Effect.Effect<A, E, R>) => Effect.Effect<GroupResult<A, T[number]>, E, R | TaskPool>
  <A, E, R>(body: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | TaskPool>
  <A, E, R, const T extends ReadonlyArray<Task<any, any, any, any>>>(
    body: Effect.Effect<A, E, R>,
    options: GroupOptions<T>
  ): Effect.Effect<GroupResult<A, T[number]>, E, R | TaskPool>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(body: Effect.Effect<A, E, R>, options?: GroupOptions<ReadonlyArray<Task<any, any, any, any>>>) => {
    const collect = options === undefined ? undefined : new Set(options.results.map((task) => task[TypeId]))
    const grouped = TaskPool.use((pool) => pool.group(body, collect))
    const result: Effect.Effect<unknown, E, R | TaskPool> = options === undefined
      ? Effect.map(grouped, (outcome) => outcome.value)
      : Effect.map(grouped, (outcome) => ({
        value: outcome.value,
        results: (task: Task<any, any, any, any>) => outcome.successesOf(task[TypeId])
      }))
    return Telemetry.span("Task.group")(result)
  }
)

/**
 * Options of `Task.forEach`. `discard: true`: keep no results (the call
 * returns `void`), so memory stays bounded by the tasks running at once
 * however many items there are.
 *
 * @category models
 * @since 0.2.0
 */
export interface ForEachOptions<D extends boolean = boolean> {
  readonly discard?: D | undefined
}

/**
 * Runs a one-argument task once per item, as a group, and returns the results
 * in the order of the items (or nothing, with `discard: true`).
 *
 * Items are taken one at a time as the pool's lanes free up, from an
 * `Iterable` (an array, a generator) or a `Stream`, so only the items running
 * at once are in memory (an item that waits on the pool gives its lane up, as
 * any task does, and the next item takes it). It costs less per item than a
 * loop of `yield* task(item)`: use it for many items. Several calls side by
 * side take turns; a call inside an item goes first, so that a nested fan-out
 * finishes before the outer one takes more items.
 *
 * It is a `Task.group`: it waits for every item and everything they submit;
 * the first failure stops the rest (items not yet taken are never taken) and
 * fails the call with that error, which the caller can handle. A stream's
 * failure does the same. Under `TaskPool.serial` the items run inline, in
 * order.
 *
 * **Example** (Transform every record, keep the results in order)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Task, TaskPool } from "effect-lateral"
 *
 * const double = Task.make("double", (n: number) => Effect.succeed(n * 2))
 *
 * const program = Effect.gen(function*() {
 *   const doubled = yield* Task.forEach([1, 2, 3], double) // [2, 4, 6]
 * }).pipe(Effect.provide(TaskPool.layer()))
 * ```
 *
 * **Example** (Load a stream of records, keep nothing)
 *
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Task } from "effect-lateral"
 *
 * const load = Task.make("load", (id: number) => Effect.log(`loaded ${id}`))
 *
 * const program = Stream.range(1, 1_000_000).pipe(Task.forEach(load, { discard: true }))
 * ```
 *
 * @category constructors
 * @since 0.2.0
 */
export const forEach: {
  <I, A, E, R, const D extends boolean = false>(
    task: Task<[I], A, E, R>,
    options?: ForEachOptions<D>
  ): <EI = never, RI = never>(
    items: Iterable<I> | Stream.Stream<I, EI, RI>
  ) => Effect.Effect<D extends true ? void : Array<A>, E | EI, R | RI | TaskPool>
  <I, A, E, R, EI = never, RI = never, const D extends boolean = false>(
    items: Iterable<I> | Stream.Stream<I, EI, RI>,
    task: Task<[I], A, E, R>,
    options?: ForEachOptions<D>
  ): Effect.Effect<D extends true ? void : Array<A>, E | EI, R | RI | TaskPool>
} = dual(
  (args) => !isTask(args[0]),
  (items: Iterable<unknown> | Stream.Stream<unknown, unknown, unknown>, task: Task<[unknown], unknown, unknown, unknown>, options?: ForEachOptions) => {
    const def = task[TypeId]
    const keep = options?.discard !== true
    return Effect.withFiber((fiber) => poolOf(fiber).forEach(fiber, def, items, keep))
  }
)

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

/**
 * `Task.forEach`: one task mapped over many items, as one group.
 *
 * The parallel pool takes the items from a `Feed` one at a time, in its own
 * start loop, as lanes free up: no fiber or effect per item on the caller's
 * side, and only the items running at once are in memory. The other pools
 * (serial, and the pool a task sees on a worker thread) call the task once
 * per item, inside a group, through `byCalls`.
 *
 * @internal
 */
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import type { Engine, Items } from "./engine.ts"
import type { Run, RunGroup } from "./run.ts"
import type { TaskDef } from "./taskDef.ts"

/** `Task.forEach` on a pool without feeds: one call per item, at most `maxWorkers` at once, in a group. */
export const byCalls = (
  engine: Engine,
  def: TaskDef,
  items: Items,
  keep: boolean
): Effect.Effect<Array<unknown> | undefined, unknown, unknown> => {
  const call = (item: unknown) =>
    Effect.flatMap(Effect.withFiber((fiber) => engine.submit(fiber, def, [item])), engine.await)
  const concurrency = engine.maxWorkers
  const body: Effect.Effect<Array<unknown> | undefined, unknown, unknown> = Array.isArray(items)
    ? Effect.forEach(items, call, { concurrency, discard: !keep }) as Effect.Effect<Array<unknown> | undefined, unknown>
    : Effect.suspend(() => {
      // Another iterable goes one item at a time (`Effect.forEach` with concurrency would read it whole
      // first), and is closed if the call stops early, so that a generator's `finally` runs.
      const iterator = Stream.isStream(items) ? undefined : items[Symbol.iterator]()
      const stream = iterator === undefined
        ? items as Stream.Stream<unknown, unknown, unknown>
        : Stream.fromIterable({ [Symbol.iterator]: () => iterator }, { chunkSize: 1 })
      const mapped = Stream.mapEffect(stream, call, { concurrency })
      return (keep ? Stream.runCollect(mapped) : Effect.as(Stream.runDrain(mapped), undefined)).pipe(
        Effect.ensuring(Effect.sync(() => iterator?.return?.()))
      )
    })
  return Effect.map(engine.group(body, undefined), (outcome) => outcome.value)
}

/** The number of runs from `run` up to a top-level run (0 for none). */
const depthOf = (run: Run | undefined): number => {
  let depth = 0
  for (let current = run; current !== undefined; current = current.parent) depth++
  return depth
}

/** What `Feed.take` returns when no item is ready. */
export const noItem: unique symbol = Symbol("effect-lateral/Feed/noItem")

/**
 * The items of a `Task.forEach` on the parallel pool, taken as lanes free up.
 *
 * The feed counts as one pending member of its group until its items end, so
 * that the group settles only once every item has been taken and has finished.
 * A stream's items arrive a chunk at a time from a producer fiber, which waits
 * until the pool has taken the whole chunk before it pulls the next.
 */
export class Feed {
  readonly def: TaskDef
  /** The caller's context: each item runs with its services. */
  readonly context: Context.Context<never>
  readonly group: RunGroup
  /** The run that called `Task.forEach`, if one did: the items are its children for `join`. */
  readonly submitter: Run | undefined
  /** Items taken so far: the index of the next one. */
  taken = 0
  /** Set once no more items will be taken: the source is used up, or the feed was stopped. */
  ended = false
  /** Whether the pool's list of feeds to take from holds this one. */
  active = false
  /** How deep in a fan-out the caller is: 0 outside tasks, 1 in a top-level task, and so on. */
  readonly depth: number
  /** An array's items are read by index (faster than its iterator); other iterables' through their iterator. */
  private readonly array: ReadonlyArray<unknown> | undefined
  /** Another iterable, and its iterator, made at the first take (making it may throw). */
  private readonly iterable: Iterable<unknown> | undefined
  private iterator: Iterator<unknown> | undefined = undefined
  /** A stream's producer, and the chunk it waits on. */
  private producer: Fiber.Fiber<void, unknown> | undefined = undefined
  private chunk: ReadonlyArray<unknown> | undefined = undefined
  private chunkIndex = 0
  private chunkTaken: (() => void) | undefined = undefined
  /** The producer of a chunk taken whole, let go by `afterTake`. */
  private resume: (() => void) | undefined = undefined
  /** Set once `end` has run. */
  finished = false

  constructor(
    def: TaskDef,
    context: Context.Context<never>,
    group: RunGroup,
    submitter: Run | undefined,
    items: Items,
    keep: boolean
  ) {
    this.def = def
    this.context = context
    this.group = group
    this.submitter = submitter
    if (keep) group.ordered = []
    this.array = Array.isArray(items) ? items : undefined
    this.iterable = this.array !== undefined || Stream.isStream(items) ? undefined : items
    this.depth = depthOf(submitter)
    group.pending++
  }

  /** The next item, or `noItem` if none is ready (then `ended` says whether more may come). May throw: an iterator's defect. */
  take(): unknown {
    const array = this.array
    if (array !== undefined) {
      if (this.taken === array.length) {
        this.ended = true
        return noItem
      }
      return array[this.taken++]
    }
    if (this.iterable !== undefined) {
      let next: IteratorResult<unknown>
      try {
        this.iterator ??= this.iterable[Symbol.iterator]()
        next = this.iterator.next()
      } catch (defect) {
        // An iterator whose `next` threw is done: it is not to be closed.
        this.ended = true
        throw defect
      }
      if (next.done) {
        this.ended = true
        return noItem
      }
      this.taken++
      return next.value
    }
    const chunk = this.chunk
    if (chunk === undefined) return noItem
    const item = chunk[this.chunkIndex++]
    if (this.chunkIndex === chunk.length) {
      // Resumed only by `afterTake`: resuming the producer here runs the stream synchronously,
      // which may end the feed (and settle its group) before this item's run is counted.
      this.resume = this.chunkTaken
      this.chunk = this.chunkTaken = undefined
    }
    this.taken++
    return item
  }

  /** Lets the producer pull the next chunk, once the item just taken has been counted. */
  afterTake(): void {
    const resume = this.resume
    this.resume = undefined
    resume?.()
  }

  /**
   * Starts the fiber that pulls a stream's chunks into the feed: `ready` is
   * called when a chunk can be taken, `done` when the stream has ended or
   * failed. Interrupting the fiber drops the chunk not yet taken.
   */
  produce(
    stream: Stream.Stream<unknown, unknown, unknown>,
    context: Context.Context<never>,
    ready: () => void,
    done: (exit: Exit.Exit<void, unknown>) => void
  ): void {
    const offer = (chunk: ReadonlyArray<unknown>) =>
      Effect.callback<void>((resume) => {
        this.chunk = chunk
        this.chunkIndex = 0
        this.chunkTaken = () => resume(Effect.void)
        ready()
        return Effect.sync(() => {
          this.chunk = this.chunkTaken = undefined
        })
      })
    const fiber = Effect.runForkWith(context)(Stream.runForEachArray(stream, offer) as Effect.Effect<void, unknown>)
    this.producer = fiber
    // The feed may have ended while the producer ran its first steps, before it was known.
    if (this.finished) fiber.interruptUnsafe()
    fiber.addObserver(done)
  }

  /** Waits for a stream's producer to have stopped (its stream's finalizers run). */
  readonly producerStopped: Effect.Effect<void> = Effect.suspend(() =>
    this.producer === undefined ? Effect.void : Effect.asVoid(Fiber.await(this.producer))
  )

  /** Stops taking items and counts the feed out of its group; true the first time. */
  end(): { defect: unknown } | boolean {
    if (this.finished) return false
    this.finished = true
    const close = !this.ended
    this.ended = true
    this.resume = undefined
    this.producer?.interruptUnsafe()
    this.group.pending--
    // A generator left with items runs its `finally` blocks (which may throw).
    if (close) {
      try {
        this.iterator?.return?.()
      } catch (defect) {
        return { defect }
      }
    }
    return true
  }
}

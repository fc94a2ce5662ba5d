import { Cause, Effect, Exit, Fiber, Layer, Option, Schema } from "effect"
import { TaskPool } from "effect-lateral"

/** A typed error for tests. */
export class Boom extends Schema.TaggedError<Boom>()("Boom", { id: Schema.Number }) {}

/** The two pools, for behaviour that must not depend on which one runs the program. */
export const bothPools: ReadonlyArray<readonly [string, Layer.Layer<TaskPool.TaskPool>]> = [
  ["layer", TaskPool.layer({ maxWorkers: 4 })],
  ["serial", TaskPool.serial]
]

/** Keeps track of fibers, to check that none is left running. */
export const fiberTracker = () => {
  const fibers: Array<Fiber.Fiber<unknown, unknown>> = []
  return {
    track: Effect.withFiber((fiber) => {
      fibers.push(fiber)
      return Effect.void
    }),
    allDone: () => fibers.length > 0 && fibers.every((fiber) => fiber.pollUnsafe() !== undefined),
    count: () => fibers.length
  }
}

/** Counts how many effects run at once and the most that ever did. */
export const concurrency = () => {
  let running = 0
  let max = 0
  return {
    around: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          running++
          max = Math.max(max, running)
        }),
        () => effect,
        () => Effect.sync(() => running--)
      ),
    max: () => max,
    running: () => running
  }
}

/** Lets the scheduler run pending fibers a few times. */
export const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

/** The typed error an exit failed with, if any (ignoring annotations such as stack traces). */
export const errorOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined

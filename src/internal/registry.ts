/**
 * The portable tasks of this thread, by module and name: how a worker thread
 * (or a runner) finds the task a message names.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { Portable } from "./portable.ts"
import type { TaskDef } from "./taskDef.ts"

export type PortableTaskDef = TaskDef & { readonly portable: Portable }

const registry = new Map<string, Map<string, PortableTaskDef>>()

/** Records a portable task, so that a thread that imports its module can find it. */
export const register = (def: PortableTaskDef): void => {
  let tasks = registry.get(def.portable.module)
  if (tasks === undefined) registry.set(def.portable.module, tasks = new Map())
  if (tasks.has(def.name)) {
    throw new Error(`Two portable tasks are named "${def.name}" in ${def.portable.module}; names must be unique per module`)
  }
  tasks.set(def.name, def)
}

/** The modules of the portable tasks this thread knows: a new worker thread imports them as it starts. */
export const registeredModules = (): Array<string> => [...registry.keys()]

/** The registered task, if its module has been imported in this thread. */
export const lookup = (module: string, name: string): PortableTaskDef | undefined => registry.get(module)?.get(name)

/** The names of the portable tasks `module` has registered in this thread. */
export const tasksOf = (module: string): ReadonlyArray<string> => Array.from(registry.get(module)?.keys() ?? [])

/** The task `name` of `module`, importing the module first if needed. */
export const resolve = (module: string, name: string): Effect.Effect<PortableTaskDef> =>
  Effect.suspend(() => {
    const found = lookup(module, name)
    if (found) return Effect.succeed(found)
    return Effect.tryPromise({
      try: () => import(module),
      catch: (cause) => new Error(`Cannot import task module ${module}: ${String(cause)}`, { cause })
    }).pipe(
      Effect.flatMap(() => {
        const def = lookup(module, name)
        return def
          ? Effect.succeed(def)
          : Effect.fail(new Error(`Module ${module} declares no portable task named "${name}"`))
      }),
      Effect.orDie
    )
  })

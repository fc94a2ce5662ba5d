/**
 * A deploy: one version of the task code, and the part of the cluster that
 * runs it. Runners and submitters of one deploy share storage tables (their
 * prefix) and a shard group, both named after the deploy id, so two versions
 * of the code sharing one database never run each other's tasks:
 *
 * - the table prefix keeps their messages, runners and shard locks apart
 *   (Postgres advisory lock numbers are derived from the prefix and from the
 *   position of a shard group among the runner's groups, so two deploys that
 *   shared a prefix would take each other's locks);
 * - the shard group makes a runner refuse a message that reaches it by a
 *   stale address (say, a runner of the new version that took over the port
 *   of an old one): the shard is not one of its own, and the sender re-routes.
 *
 * @internal
 */
import * as Cause from "effect/Cause"

export interface Deploy {
  /** The id as given (a version, a commit). */
  readonly id: string
  /** The SQL table prefix, also the shard group: an identifier every SQL dialect accepts. */
  readonly name: string
}

/** The deploy id when none is given. */
export const defaultDeploy = "default"

// Postgres identifiers stop at 63 characters, and the longest table is `<name>_runner_migrations`.
const maxName = 32

/**
 * The deploy named `id`. Ids of lower-case letters, digits and underscores
 * keep their name (`lateral_<id>`); others get a readable part and a hash.
 *
 * **Example** (Names)
 *
 * ```ts
 * make("v42").name // "lateral_v42"
 * make("1.4.0").name // "lateral_1_4_0_" + a hash of "1.4.0"
 * ```
 */
export const make = (id: string = defaultDeploy): Deploy => {
  if (id.length === 0) throw new Cause.IllegalArgumentError("A deploy id must not be empty")
  const plain = `lateral_${id}`
  if (/^[a-z0-9_]+$/.test(id) && plain.length <= maxName) return { id, name: plain }
  const hash = fnv1a(id).toString(16).padStart(8, "0")
  const readable = id.toLowerCase().replace(/[^a-z0-9]+/g, "_").slice(0, maxName - "lateral_".length - hash.length - 1)
  return { id, name: `lateral_${readable}_${hash}` }
}

/** 32-bit FNV-1a over the UTF-16 code units: stable across processes and versions. */
const fnv1a = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

/**
 * CPU-bound work on worker threads: compress and hash 128 buffers of 256 KiB,
 * serially and then on the pool's threads, and print both wall times.
 *
 * A portable task names its module and describes its payload and result with
 * Schemas; the pool's worker threads import this module to run it. The
 * `import.meta.main` guard keeps them from running the program too.
 *
 *   npx node examples/cpu.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Schema } from "effect"
import { Task, TaskPool } from "effect-lateral"
import { createHash } from "node:crypto"
import { availableParallelism } from "node:os"
import { deflateSync } from "node:zlib"

const Summary = Schema.Struct({ compressed: Schema.Number, sha256: Schema.String })

/** Compresses a buffer and hashes the result: about 20 ms of CPU per buffer here. */
export const compressAndHash = Task.make(
  "compressAndHash",
  (data: Uint8Array) =>
    Effect.sync(() => {
      const compressed = deflateSync(data)
      return { compressed: compressed.length, sha256: createHash("sha256").update(compressed).digest("hex") }
    }),
  { module: import.meta.url, payload: Schema.Uint8Array, success: Summary }
)

/** Deterministic, compressible but not trivially so: words drawn from a small vocabulary. */
const makeBuffer = (seed: number, size: number): Uint8Array => {
  const words = ["effect", "lateral", "task", "pool", "lane", "thread", "fiber", "scope", "layer", "schema"]
  let state = seed + 1
  const parts: Array<string> = []
  let length = 0
  while (length < size) {
    state = (state * 1103515245 + 12345) % 2147483648
    const word = words[state % words.length]! + (state % 97)
    parts.push(word)
    length += word.length + 1
  }
  return new TextEncoder().encode(parts.join(" ")).subarray(0, size)
}

const compressAll = (buffers: ReadonlyArray<Uint8Array>) => Effect.gen(function*() {
  const started = Date.now()
  const report = yield* Task.group(Effect.forEach(buffers, (buffer) => compressAndHash(buffer), { discard: true }), {
    results: [compressAndHash]
  })
  const summaries = report.results(compressAndHash)
  const compressed = summaries.reduce((total, summary) => total + summary.compressed, 0)
  return { millis: Date.now() - started, compressed, hashes: new Set(summaries.map((summary) => summary.sha256)).size }
})

const program = Effect.gen(function*() {
  // Built here, not at the top level: worker threads import this module too.
  const buffers = Array.from({ length: 128 }, (_, i) => makeBuffer(i, 1 << 18))
  const serial = yield* compressAll(buffers).pipe(Effect.provide(TaskPool.serial))
  // `warmUp` starts the threads when the pool is built, each importing this module: none starts inside the timed batch.
  const started = Date.now()
  const [startup, pooled] = yield* Effect.gen(function*() {
    const startup = Date.now() - started
    return [startup, yield* compressAll(buffers)] as const
  }).pipe(Effect.provide(TaskPool.layer({ warmUp: true })))
  const megabytes = buffers.reduce((total, buffer) => total + buffer.length, 0) / 2 ** 20
  yield* Console.log(`${megabytes.toFixed(0)} MiB compressed to ${(serial.compressed / 2 ** 20).toFixed(1)} MiB, ${serial.hashes} distinct hashes`)
  yield* Console.log(`serial:  ${serial.millis} ms`)
  yield* Console.log(`pooled:  ${pooled.millis} ms on ${Math.min(TaskPool.defaultMaxWorkers, availableParallelism())} threads (started in ${startup} ms)`)
  yield* Console.log(`speedup: ${(serial.millis / pooled.millis).toFixed(2)}x`)
  if (pooled.compressed !== serial.compressed || pooled.hashes !== serial.hashes) {
    return yield* Effect.die(new Error("the pooled run computed something else than the serial run"))
  }
})

if (import.meta.main) NodeRuntime.runMain(program)

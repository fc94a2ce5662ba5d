/**
 * The benchmarks' work as plain functions, so that every pool runs the same
 * code: piscina and tinypool call these exports by name, the raw workers
 * through `rawWorker.ts`, effect-lateral through the portable tasks of
 * `portable.ts`. Nothing here imports `effect`.
 */
import { createHash } from "node:crypto"
import { deflateSync } from "node:zlib"

/** The tiny task. */
export const addOne = (n: number): number => n + 1

/** The payload task: the cost is moving the bytes, not using them. */
export const byteLength = (data: Uint8Array): number => data.byteLength

/** The CPU-bound task of `examples/cpu.ts`: compress a buffer and hash the result. */
export const compressAndHash = (data: Uint8Array): { readonly compressed: number; readonly sha256: string } => {
  const compressed = deflateSync(data)
  return { compressed: compressed.length, sha256: createHash("sha256").update(compressed).digest("hex") }
}

/** The buffers of `examples/cpu.ts`: words drawn from a small vocabulary, compressible but not trivially so. */
export const makeBuffer = (seed: number, size: number): Uint8Array => {
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

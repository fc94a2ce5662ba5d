import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

/** Runs an example the way a reader would, in a fresh Node process. */
const runExample = (file: string, args: ReadonlyArray<string> = []) =>
  Effect.callback<{ readonly stdout: string; readonly stderr: string; readonly code: number }>((resume) => {
    const path = fileURLToPath(new URL(`../examples/${file}`, import.meta.url))
    const child = execFile(process.execPath, [path, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      resume(Effect.succeed({ stdout, stderr, code: error ? (typeof error.code === "number" ? error.code : 1) : 0 }))
    })
    return Effect.sync(() => child.kill())
  })

describe("examples", () => {
  it.live("quickstart: every page is printed before Complete!", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* runExample("quickstart.ts")
      assert.strictEqual(code, 0)
      const lines = stdout.trim().split("\n")
      assert.strictEqual(lines.length, 6)
      assert.strictEqual(lines.at(-1), "Complete!")
      for (const text of ["All the News That's Fit to Print", "Breaking News", "Business, Finance", "BBC News", "failed"]) {
        assert.isTrue(lines.slice(0, 5).some((line) => line.includes(text)), `missing ${text}`)
      }
    }))

  it.live("nested: totals per account from nested groups", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* runExample("nested.ts")
      assert.strictEqual(code, 0)
      assert.include(stdout, "acme: 15 orders, total 330")
      assert.include(stdout, "umbrella: 15 orders, total 330")
      assert.match(stdout, /fetched 12 pages in \d+ ms/)
    }))

  it.live("barrier: every download happens before the first index", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* runExample("barrier.ts")
      assert.strictEqual(code, 0)
      const lines = stdout.trim().split("\n")
      assert.deepStrictEqual(lines.slice(0, 4).map((line) => line.split(" ")[0]), ["downloaded", "downloaded", "downloaded", "downloaded"])
      assert.strictEqual(lines[4], "--- all downloads done ---")
      assert.strictEqual(lines.filter((line) => line.includes("(4/4 files present)")).length, 4)
    }))

  it.live("worker-local: one connection per lane", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* runExample("worker-local.ts")
      assert.strictEqual(code, 0)
      const match = /(\d+) events saved through (\d+) connections \(maxWorkers: 4, opened: (\d+)\)/.exec(stdout)
      assert.isNotNull(match)
      assert.strictEqual(Number(match![1]), 200)
      assert.isAtMost(Number(match![2]), 4)
      assert.isAtMost(Number(match![3]), 4)
    }))

  it.live("cpu: the same results serially and on worker threads, with both wall times", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* runExample("cpu.ts")
      assert.strictEqual(code, 0, "the example checks that both runs computed the same")
      assert.match(stdout, /32 MiB compressed to [\d.]+ MiB, 128 distinct hashes/)
      assert.match(stdout, /serial: +\d+ ms/)
      assert.match(stdout, /pooled: +\d+ ms on \d+ threads \(started in \d+ ms\)/)
      assert.match(stdout, /speedup: [\d.]+x/)
    }), 60_000)
})

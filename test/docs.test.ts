import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

/**
 * Runs every TypeScript snippet of docs/usage.md as a program, twice: as
 * written, and with `TaskPool.serial` in place of `TaskPool.layer(...)`. Each
 * run's output is checked against the `text` block that follows the snippet
 * (or, under serial, a `text serial` block where the output differs). A
 * snippet marked `<!-- parallel pool only -->` runs once. Snippets are written
 * inside the package, so that they import "effect-lateral" as a user would.
 */
const usage = readFileSync(new URL("../docs/usage.md", import.meta.url), "utf8")
const pattern = /(<!-- parallel pool only -->\n)?```ts\n([\s\S]*?)```\n+```text\n([\s\S]*?)```\n+(?:```text serial\n([\s\S]*?)```\n)?/g
const snippets = [...usage.matchAll(pattern)].map((match, i) => ({
  heading: usage.slice(0, match.index).match(/^## (.+)$/gm)?.at(-1)?.slice(3) ?? `snippet ${i}`,
  parallelOnly: match[1] !== undefined,
  code: match[2]!,
  output: match[3]!.trim(),
  serialOutput: (match[4] ?? match[3]!).trim()
}))
const directory = new URL("../.tmp/docs/", import.meta.url)

/** The same program under the serial pool. */
const underSerial = (code: string) => code.replace(/TaskPool\.layer\((\{[^}]*\})?\)/g, "TaskPool.serial")

const run = (file: string) =>
  Effect.callback<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = execFile(process.execPath, [file], { timeout: 30_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr })))
    return Effect.sync(() => child.kill())
  })

const runSnippet = (code: string, name: string) =>
  Effect.gen(function*() {
    mkdirSync(directory, { recursive: true })
    const file = fileURLToPath(new URL(`${name}.ts`, directory))
    writeFileSync(file, code)
    return yield* run(file)
  })

describe("docs/usage.md", () => {
  it("has a checked output for every snippet", () => {
    assert.strictEqual(snippets.length, (usage.match(/```ts\n/g) ?? []).length)
    assert.isAtLeast(snippets.length, 10)
  })

  it.live.each(snippets.map((snippet, i) => [snippet.heading, snippet, i] as const))("%s", ([, snippet, i]) =>
    Effect.gen(function*() {
      const parallel = yield* runSnippet(snippet.code, `usage-${i}`)
      assert.strictEqual(parallel.code, 0, parallel.stderr)
      assert.strictEqual(parallel.stdout.trim(), snippet.output)
      if (snippet.parallelOnly) return
      const serialCode = underSerial(snippet.code)
      const serial = yield* runSnippet(serialCode, `usage-${i}-serial`)
      assert.strictEqual(serial.code, 0, serial.stderr)
      assert.strictEqual(serial.stdout.trim(), snippet.serialOutput, "under TaskPool.serial")
    }), 60_000)
})

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

/**
 * Runs every TypeScript snippet of docs/usage.md as a program, and checks its
 * output against the `text` block that follows it. Snippets are written inside
 * the package, so that they import "effect-lateral" as a user would.
 */
const usage = readFileSync(new URL("../docs/usage.md", import.meta.url), "utf8")
const snippets = [...usage.matchAll(/```ts\n([\s\S]*?)```\n+```text\n([\s\S]*?)```/g)].map((match, i) => ({
  heading: usage.slice(0, match.index).match(/^## (.+)$/gm)?.at(-1)?.slice(3) ?? `snippet ${i}`,
  code: match[1]!,
  output: match[2]!.trim()
}))
const directory = new URL("../.tmp/docs/", import.meta.url)

const run = (file: string) =>
  Effect.callback<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = execFile(process.execPath, [file], { timeout: 30_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr })))
    return Effect.sync(() => child.kill())
  })

describe("docs/usage.md", () => {
  it("has a checked output for every snippet", () => {
    assert.strictEqual(snippets.length, (usage.match(/```ts\n/g) ?? []).length)
    assert.isAtLeast(snippets.length, 10)
  })

  it.live.each(snippets.map((snippet, i) => [snippet.heading, snippet, i] as const))("%s", ([, snippet, i]) =>
    Effect.gen(function*() {
      mkdirSync(directory, { recursive: true })
      const file = fileURLToPath(new URL(`usage-${i}.ts`, directory))
      writeFileSync(file, snippet.code)
      const { code, stderr, stdout } = yield* run(file)
      assert.strictEqual(code, 0, stderr)
      assert.strictEqual(stdout.trim(), snippet.output)
    }), 40_000)
})

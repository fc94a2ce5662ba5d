/**
 * The package as users get it. `npm pack` (which builds `dist/`), then one
 * project installs the tarball with effect and @effect/platform-node from the
 * npm cache, and every case runs in it:
 *
 * - `ts/`: strict TypeScript (`module: NodeNext`), checked by tsc with
 *   `skipLibCheck: false`, so that an error inside the package counts; the
 *   README's quick start and `examples/cpu.ts` are copied in unchanged.
 * - `js/`: the same files as plain JavaScript, emitted by that tsc run.
 * - `vitest/`: a vitest suite.
 *
 * Each runs in-process tasks, portable tasks on worker threads with a typed
 * error caught by tag, and `TaskPool.layerConfig()` with `LATERAL_ENABLED=false`
 * (`test/consumer/`), on this Node (24), on Node 22 installed from the npm
 * registry, and, to see the error it gets, on an older Node found on PATH.
 */
import { assert, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import { fileURLToPath } from "node:url"

const repo = fileURLToPath(new URL("..", import.meta.url))
const packageJson = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { name: string; version: string }
/** The version of a dependency installed here, which the npm cache therefore holds. */
const installed = (name: string): string =>
  (JSON.parse(readFileSync(join(repo, "node_modules", name, "package.json"), "utf8")) as { version: string }).version

// The consumers' processes get none of this repository's npm settings (its
// .npmrc sets NODE_OPTIONS to resolve "effect-lateral" to src/) and none of
// the variables of the vitest running this file; and no colors in their output.
const consumerEnv: Record<string, string | undefined> = {
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(node_options$|npm_|vitest|force_)/i.test(key))),
  NO_COLOR: "1"
}

interface Output {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs a program to its end, killed after `timeout` ms or when interrupted. */
const run = (file: string, args: ReadonlyArray<string>, options: {
  readonly cwd: string
  readonly env?: Record<string, string>
  readonly timeout?: number
}) =>
  Effect.callback<Output>((resume) => {
    const child = execFile(file, args, {
      cwd: options.cwd,
      env: { ...consumerEnv, ...options.env },
      timeout: options.timeout ?? 60_000,
      maxBuffer: 16 * 2 ** 20
    }, (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
    })
    return Effect.sync(() => child.kill())
  })

const versionOf = (node: string) =>
  Effect.map(run(node, ["-p", "process.versions.node"], { cwd: repo }), (output) => output.stdout.trim())

const npmInstall = (cwd: string, packages: ReadonlyArray<string> = []) =>
  run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", ...packages], { cwd, timeout: 240_000 })

/**
 * Node 22, from the `node` package of the npm registry, kept in
 * `node_modules/.cache` so that only the first run installs it.
 */
const node22 = Effect.gen(function*() {
  const cache = join(repo, "node_modules", ".cache", "effect-lateral", "node-22")
  const binary = join(cache, "node_modules", "node", "bin", "node")
  if (!existsSync(binary)) {
    mkdirSync(join(cache, ".."), { recursive: true })
    const staging = mkdtempSync(`${cache}-`)
    writeFileSync(join(staging, "package.json"), JSON.stringify({ private: true, allowScripts: { node: true } }))
    const install = yield* npmInstall(staging, ["node@22"]).pipe(
      Effect.onInterrupt(() => Effect.sync(() => rmSync(staging, { recursive: true, force: true })))
    )
    if (install.code !== 0) {
      rmSync(staging, { recursive: true, force: true })
      return { unavailable: `npm install node@22 failed: ${install.stderr.trim().split("\n").slice(-3).join(" ")}` }
    }
    renameSync(staging, cache)
  }
  return { binary, version: yield* versionOf(binary) }
})

/** The first `node` on PATH older than 22, if any (this machine's system Node is 20). */
const olderNode = Effect.gen(function*() {
  for (const directory of (consumerEnv.PATH ?? "").split(delimiter)) {
    const binary = join(directory, "node")
    if (directory === "" || directory.startsWith(repo) || !existsSync(binary)) continue
    const version = yield* versionOf(binary)
    if (Number(version.split(".")[0]) < 22) return { binary, version }
  }
  return undefined
})

const tsconfig = {
  compilerOptions: {
    target: "ES2024",
    // effect's declarations use Web Crypto types (`CryptoKey`, `JsonWebKey`) that only "DOM" declares.
    lib: ["ES2024", "DOM"],
    module: "NodeNext",
    moduleResolution: "NodeNext",
    types: ["node"],
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    erasableSyntaxOnly: true,
    // Type errors inside the package (or effect) count.
    skipLibCheck: false,
    // The examples import each other with `.ts`, so that Node runs them as they are; tsc emits `.js`.
    allowImportingTsExtensions: true,
    rewriteRelativeImportExtensions: true,
    outDir: "../js"
  },
  include: ["*.ts", "support/*.ts"]
}

/** A project that installed the packed package: one install, shared by every case. */
class Consumer extends Context.Service<Consumer, {
  readonly app: string
  readonly tsc: Output
  readonly node22: { readonly binary: string; readonly version: string } | { readonly unavailable: string }
  readonly olderNode: { readonly binary: string; readonly version: string } | undefined
}>()("test/Consumer") {
  static readonly layer = Layer.effect(
    Consumer,
    Effect.gen(function*() {
      const root = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "effect-lateral-package-"))),
        (root) => Effect.sync(() => rmSync(root, { recursive: true, force: true }))
      )
      const app = join(root, "app")
      const copy = (from: string, to: string) => cpSync(join(repo, from), join(app, to))
      mkdirSync(join(app, "ts", "support"), { recursive: true })
      mkdirSync(join(app, "vitest"))
      for (const file of ["tasks.ts", "main.ts"]) copy(`test/consumer/${file}`, `ts/${file}`)
      for (const file of ["quickstart.ts", "cpu.ts", "support/LocalSites.ts"]) copy(`examples/${file}`, `ts/${file}`)
      writeFileSync(join(app, "ts", "tsconfig.json"), JSON.stringify(tsconfig, null, 2))
      for (const file of ["tasks.ts", "tasks.spec.ts"]) copy(`test/consumer/${file}`, `vitest/${file}`)

      const tarball = join(root, `${packageJson.name}-${packageJson.version}.tgz`)
      writeFileSync(
        join(app, "package.json"),
        JSON.stringify({
          name: "consumer",
          private: true,
          type: "module",
          dependencies: Object.fromEntries(
            [["effect-lateral", `file:${tarball}`], ...["effect", "@effect/platform-node"].map((name) => [name, installed(name)])]
          ),
          devDependencies: Object.fromEntries(
            ["typescript", "@types/node", "vitest", "@effect/vitest"].map((name) => [name, installed(name)])
          )
        })
      )

      const prepare = Effect.gen(function*() {
        const pack = yield* run("npm", ["pack", "--pack-destination", root], { cwd: repo, timeout: 120_000 })
        assert.strictEqual(pack.code, 0, `npm pack failed:\n${pack.stdout}\n${pack.stderr}`)
        const install = yield* npmInstall(app)
        assert.strictEqual(install.code, 0, `npm install failed:\n${install.stderr}`)
        return yield* run(process.execPath, [join(app, "node_modules", "typescript", "bin", "tsc"), "-p", "ts"], { cwd: app })
      })
      const [tsc, node22Found, olderNodeFound] = yield* Effect.all([prepare, node22, olderNode], { concurrency: "unbounded" })
      return { app, tsc, node22: node22Found, olderNode: olderNodeFound }
    })
  )
}

const expectedMain = [
  "in-process: 2 4 6",
  "portable: half of 8 is 4, on a worker thread: true",
  "portable: Odd 3, caught by tag",
  "layerConfig: half of 8 is 4, on a worker thread: false"
].join("\n")

/** Runs the consumer's program and the quick start in `project` (`js` or `ts`), and checks what they print. */
const runPrograms = (node: string, app: string, project: "js" | "ts") =>
  Effect.gen(function*() {
    const cwd = join(app, project)
    const main = yield* run(node, [`main.${project}`], { cwd, env: { LATERAL_ENABLED: "false" } })
    assert.strictEqual(main.code, 0, main.stderr)
    assert.strictEqual(main.stdout.trim(), expectedMain)

    const quickstart = yield* run(node, [`quickstart.${project}`], { cwd })
    assert.strictEqual(quickstart.code, 0, quickstart.stderr)
    const lines = quickstart.stdout.trim().split("\n")
    assert.strictEqual(lines.length, 6, quickstart.stdout)
    assert.strictEqual(lines.at(-1), "Complete!")
  })

const runVitest = (node: string, app: string) =>
  Effect.gen(function*() {
    const vitest = join(app, "node_modules", "vitest", "vitest.mjs")
    const result = yield* run(node, [vitest, "run"], { cwd: join(app, "vitest"), env: { LATERAL_ENABLED: "false" } })
    assert.strictEqual(result.code, 0, result.stdout + result.stderr)
    assert.match(result.stdout, /Tests +3 passed/)
  })

layer(Consumer.layer, { timeout: "300 seconds", excludeTestServices: true, concurrent: true })("the packed package, installed", (it) => {
  it.effect("strict TypeScript: tsc finds no error, in the project or inside the package", () =>
    Effect.gen(function*() {
      const { tsc } = yield* Consumer
      assert.strictEqual(tsc.code, 0, tsc.stdout + tsc.stderr)
      assert.strictEqual(tsc.stdout + tsc.stderr, "")
    }))

  it.effect(`Node ${process.versions.node}: JavaScript and TypeScript programs, and the quick start`, () =>
    Effect.gen(function*() {
      const { app } = yield* Consumer
      yield* runPrograms(process.execPath, app, "js")
      yield* runPrograms(process.execPath, app, "ts")
    }), 90_000)

  it.effect(`Node ${process.versions.node}: a vitest suite`, () =>
    Effect.gen(function*() {
      const { app } = yield* Consumer
      yield* runVitest(process.execPath, app)
    }), 90_000)

  it.effect("Node 22: JavaScript and TypeScript programs, the quick start, and a vitest suite", (ctx) =>
    Effect.gen(function*() {
      const { app, node22 } = yield* Consumer
      if ("unavailable" in node22) return yield* Effect.sync(() => ctx.skip(`Node 22 could not be installed: ${node22.unavailable}`))
      assert.match(node22.version, /^22\./)
      yield* runPrograms(node22.binary, app, "js")
      yield* runPrograms(node22.binary, app, "ts")
      yield* runVitest(node22.binary, app)
    }), 120_000)

  it.effect("an older Node gets an error that names the Node it needs", (ctx) =>
    Effect.gen(function*() {
      const { app, olderNode } = yield* Consumer
      if (olderNode === undefined) return yield* Effect.sync(() => ctx.skip("no Node older than 22 on PATH"))
      const result = yield* run(olderNode.binary, ["main.js"], { cwd: join(app, "js") })
      assert.notStrictEqual(result.code, 0)
      assert.include(result.stderr, `effect-lateral needs Node.js 22.19 or later; this is Node.js ${olderNode.version}.`)
    }))
})

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
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

const etlMain = fileURLToPath(new URL("../examples/etl/main.ts", import.meta.url))

/** The process ids of the runners the demo says it started. */
const runnerPids = (stdout: string) => [...stdout.matchAll(/127\.0\.0\.1:\d+ pid (\d+)/g)].map((match) => Number(match[1]))

/** Whether a process is still there (signal 0 only checks). */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

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

  describe("etl demo", () => {
    it.live("loads the API's users and posts into SQLite, the same rows serially and in parallel, idempotently", () =>
      Effect.gen(function*() {
        const db = join(mkdtempSync(join(tmpdir(), "lateral-demo-")), "blog.db")
        const args = ["--users", "6", "--posts", "5", "--db", db]
        const first = yield* runExample("etl/main.ts", args)
        assert.strictEqual(first.code, 0, first.stderr)
        assert.match(first.stdout, /serial: +[\d.]+ s, 6 users and 30 posts in the database/)
        assert.match(first.stdout, /parallel: +[\d.]+ s, 6 users and 30 posts in the database \(maxWorkers \d+, \d+ worker threads\)/)
        assert.match(first.stdout, /speedup: +[\d.]+x/)
        assert.include(first.stdout, "rows:     the same in both runs")
        // The table per task, from the pool's metrics: the parallel run's 30 transforms, none failed.
        assert.include(first.stdout, "per task, parallel run (from the pool's metrics):")
        assert.match(first.stdout, /transformPost +30 +0 +0 +[\d.]+ +[\d.]+/)
        // Not a terminal: progress comes as log lines, from the pool's counters.
        assert.match(first.stdout, /(serial|parallel) *: \d+\/\d+ tasks done, \d+ failed, \d+ in flight, \d+ tasks\/s/)

        const database = new DatabaseSync(db, { readOnly: true })
        const users = database.prepare("SELECT id, email FROM users ORDER BY id").all() as Array<{ id: number; email: string }>
        const posts = database.prepare("SELECT * FROM posts ORDER BY id").all() as Array<Record<string, number | string>>
        database.close()
        assert.deepStrictEqual(users.map((user) => user.id), [1, 2, 3, 4, 5, 6])
        assert.strictEqual(users[0]!.email, "user1@example.com")
        assert.strictEqual(posts.length, 30)
        for (const post of posts) {
          assert.match(String(post.sha256), /^[0-9a-f]{64}$/)
          assert.isAbove(Number(post.words), 0)
          assert.isAbove(Number(post.compressed_bytes), 0)
          assert.strictEqual(String(post.top_words).split(" ").length, 5)
          assert.strictEqual(Math.floor(Number(post.id) / 1000), Number(post.user_id))
        }

        // A second run finds the rows there and changes nothing.
        const second = yield* runExample("etl/main.ts", args)
        assert.strictEqual(second.code, 0, second.stderr)
        assert.match(second.stdout, /parallel: +[\d.]+ s, 6 users and 30 posts in the database/)
      }), 60_000)

    it.live("--runners 3: the transform on 3 local runner processes, which ran every transform and are stopped at the end", () =>
      Effect.gen(function*() {
        const db = join(mkdtempSync(join(tmpdir(), "lateral-demo-")), "blog.db")
        const { code, stderr, stdout } = yield* runExample("etl/main.ts", ["--runners", "3", "--users", "6", "--posts", "5", "--db", db])
        const pids = runnerPids(stdout)
        // Whatever happened, no runner outlives the test.
        yield* Effect.addFinalizer(() => Effect.sync(() => pids.forEach((pid) => alive(pid) && process.kill(pid, "SIGKILL"))))
        assert.strictEqual(code, 0, stderr)
        assert.strictEqual(pids.length, 3, stdout)
        assert.match(stdout, /serial: +[\d.]+ s, 6 users and 30 posts in the database/)
        assert.match(stdout, /parallel: +[\d.]+ s, 6 users and 30 posts in the database \(maxWorkers \d+, the transform on 3 runners\)/)
        const runners = /runners: +(\d+) transforms; (.*)/.exec(stdout)
        assert.isNotNull(runners, stdout)
        const counts = runners![2]!.split(", ").map((entry) => Number(/^127\.0\.0\.1:\d+ ran (\d+)$/.exec(entry)![1]))
        assert.strictEqual(counts.length, 3)
        assert.strictEqual(counts.reduce((total, count) => total + count, 0), Number(runners![1]))
        // At least once: a transform may run twice (its runner's shards moved while it ran), never less.
        assert.isAtLeast(Number(runners![1]), 30)
        assert.include(stdout, "rows:     the same in both runs")
        assert.deepStrictEqual(pids.filter(alive), [], "every runner has ended")
      }), 90_000)

    it.live("--runners: interrupted with SIGINT, it stops every runner it started", () =>
      Effect.gen(function*() {
        const db = join(mkdtempSync(join(tmpdir(), "lateral-demo-")), "blog.db")
        const demo = spawn(process.execPath, [etlMain, "--runners", "2", "--users", "40", "--db", db], { stdio: ["ignore", "pipe", "pipe"] })
        const exited = new Promise<void>((resolve) => demo.once("exit", () => resolve()))
        let stdout = ""
        demo.stdout.on("data", (data) => (stdout += data))
        let pids: Array<number> = []
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => [demo.pid!, ...pids].forEach((pid) => alive(pid) && process.kill(pid, "SIGKILL")))
        )
        yield* Effect.sleep("50 millis").pipe(
          Effect.repeat({ until: () => (pids = runnerPids(stdout)).length === 2 }),
          Effect.timeout("60 seconds")
        )
        process.kill(demo.pid!, "SIGINT")
        yield* Effect.promise(() => exited).pipe(Effect.timeout("30 seconds"))
        assert.deepStrictEqual(pids.filter(alive), [], "every runner has ended")
      }), 90_000)

    it.live("--help lists the flags; a bad flag gets a clear message and a non-zero exit", () =>
      Effect.gen(function*() {
        const help = yield* runExample("etl/main.ts", ["--help"])
        assert.strictEqual(help.code, 0)
        for (const flag of ["--users", "--posts", "--workers", "--threads", "--db", "--runners"]) assert.include(help.stdout, flag)
        const bad = yield* runExample("etl/main.ts", ["--users", "zero"])
        assert.notStrictEqual(bad.code, 0)
        assert.include(bad.stdout + bad.stderr, `Invalid value for flag --users: "zero"`)
        const unknown = yield* runExample("etl/main.ts", ["--bogus"])
        assert.notStrictEqual(unknown.code, 0)
        assert.include(unknown.stdout + unknown.stderr, "Unrecognized flag: --bogus")
      }), 60_000)
  })
})

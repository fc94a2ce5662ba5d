import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Stream } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as SqlClient from "effect/sql/SqlClient"
import { execFile } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { fileURLToPath } from "node:url"
import * as SqliteClient from "../../src/internal/cluster/SqliteClient.ts"

const tempDb = () => join(mkdtempSync(join(tmpdir(), "lateral-sqlite-")), "test.db")

/** Runs `body` with a client on `filename`, closed afterwards. */
const withSql = <A, E>(filename: string, body: (sql: SqlClient.SqlClient) => Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* body(sql)
  }).pipe(Effect.provide(SqliteClient.layer({ filename })))

describe("SqliteClient", () => {
  it.effect("runs statements: rows, values, changes, unprepared, streams", () =>
    withSql(":memory:", (sql) =>
      Effect.gen(function*() {
        yield* sql`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`
        yield* sql`INSERT INTO items ${sql.insert([{ id: 1, name: "a" }, { id: 2, name: "b" }])}`
        const rows = yield* sql<{ readonly id: number; readonly name: string }>`SELECT id, name FROM items ORDER BY id`
        assert.deepStrictEqual(rows.map((row) => [row.id, row.name]), [[1, "a"], [2, "b"]])
        assert.deepStrictEqual(yield* sql`SELECT name FROM items WHERE id IN ${sql.in([2])}`.values, [["b"]])
        const raw = yield* sql`UPDATE items SET name = ${"c"}`.raw
        assert.strictEqual((raw as { readonly changes: number }).changes, 2)
        assert.deepStrictEqual(yield* sql`SELECT count(*) AS n FROM items`.unprepared, [{ n: 2 }].map((row) => Object.assign(Object.create(null), row)))
        const streamed = yield* Stream.runCollect(sql`SELECT id FROM items ORDER BY id`.stream)
        assert.deepStrictEqual(Array.from(streamed, (row) => row.id), [1, 2])
      })))

  it.effect("reads integers as bigints when asked (SafeIntegers)", () =>
    withSql(":memory:", (sql) =>
      Effect.gen(function*() {
        const big = 2n ** 62n
        const [row] = yield* sql`SELECT ${big} AS n`.pipe(Effect.provideService(SqlClient.SafeIntegers, true))
        assert.strictEqual(row!.n, big)
      })))

  it.effect("classifies SQLite's errors", () =>
    withSql(":memory:", (sql) =>
      Effect.gen(function*() {
        yield* sql`CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE)`
        yield* sql`INSERT INTO users (id, email) VALUES (1, 'a@x')`
        const unique = yield* Effect.flip(sql`INSERT INTO users (id, email) VALUES (2, 'a@x')`)
        assert.strictEqual(unique.reason._tag, "UniqueViolation")
        const primaryKey = yield* Effect.flip(sql`INSERT INTO users (id, email) VALUES (1, 'b@x')`)
        assert.strictEqual(primaryKey.reason._tag, "ConstraintError")
        const syntax = yield* Effect.flip(sql`SELEC 1`)
        assert.strictEqual(syntax.reason._tag, "UnknownError")
      })))

  it.effect("fails to open a file it cannot create, with a ConnectionError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(withSql("/nonexistent-directory/x.db", (sql) => sql`SELECT 1`))
      assert.strictEqual(error.reason._tag, "ConnectionError")
    }))

  it.effect("transactions commit, roll back on failure, and nest as savepoints", () =>
    withSql(":memory:", (sql) =>
      Effect.gen(function*() {
        yield* sql`CREATE TABLE log (entry TEXT)`
        const count = Effect.map(sql<{ readonly n: number }>`SELECT count(*) AS n FROM log`, (rows) => rows[0]!.n)
        yield* sql.withTransaction(sql`INSERT INTO log VALUES ('committed')`)
        const failed = yield* sql.withTransaction(Effect.andThen(sql`INSERT INTO log VALUES ('rolled back')`, Effect.fail("no"))).pipe(Effect.exit)
        assert.isTrue(Exit.isFailure(failed))
        assert.strictEqual(yield* count, 1)
        yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO log VALUES ('outer')`
          yield* Effect.ignore(sql.withTransaction(Effect.andThen(sql`INSERT INTO log VALUES ('inner')`, Effect.fail("inner fails"))))
        }))
        const entries = yield* sql<{ readonly entry: string }>`SELECT entry FROM log ORDER BY rowid`
        assert.deepStrictEqual(entries.map((row) => row.entry), ["committed", "outer"])
      })))

  it.effect("a transaction takes the write lock at BEGIN; readers do not wait for it (WAL)", () =>
    Effect.gen(function*() {
      const filename = tempDb()
      const other = yield* Effect.scoped(Effect.gen(function*() {
        const first = yield* SqliteClient.make({ filename })
        const second = yield* SqliteClient.make({ filename, busyTimeout: "50 millis" })
        yield* first`CREATE TABLE t (n INTEGER)`
        yield* first`INSERT INTO t VALUES (1)`
        // While `first` holds a transaction that has only read, `second` can
        // read but not begin a transaction of its own.
        return yield* first.withTransaction(Effect.gen(function*() {
          yield* first`SELECT n FROM t`
          const read = yield* second<{ readonly n: number }>`SELECT n FROM t`
          const begin = yield* Effect.flip(second.withTransaction(second`SELECT n FROM t`))
          return { read: read[0]!.n, begin: begin.reason._tag }
        }))
      }).pipe(Effect.provide(Reactivity.layer)))
      assert.deepStrictEqual(other, { read: 1, begin: "LockTimeoutError" })
      const mode = new DatabaseSync(filename).prepare("PRAGMA journal_mode").get() as { readonly journal_mode: string }
      assert.strictEqual(mode.journal_mode, "wal")
    }))

  it.live("processes contending for one file lose no update", () =>
    Effect.gen(function*() {
      const filename = tempDb()
      const setup = new DatabaseSync(filename)
      setup.exec("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter VALUES (1, 0)")
      setup.close()
      const increments = 100
      const outputs = yield* Effect.all([contender(filename, increments), contender(filename, increments)], { concurrency: 2 })
      for (const output of outputs) assert.match(output, /^done \d+/)
      const check = new DatabaseSync(filename, { readOnly: true })
      assert.deepStrictEqual({ ...check.prepare("SELECT n FROM counter").get() }, { n: 2 * increments })
      check.close()
    }), 60_000)
})

/** Runs one contender process; fails with its output if it does not print `done`. */
const contender = (filename: string, increments: number) =>
  Effect.callback<string, Error>((resume) => {
    const script = fileURLToPath(new URL("../fixtures/cluster/sqliteContender.ts", import.meta.url))
    const child = execFile(process.execPath, [script, filename, String(increments)], { timeout: 50_000 }, (error, stdout, stderr) => {
      resume(error ? Effect.fail(new Error(`${error.message}\n${stderr}`)) : Effect.succeed(stdout))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/**
 * A `SqlClient` (effect/sql) over Node's built-in `node:sqlite`, made for the
 * cluster's SQL storage (`SqlMessageStorage`, `SqlRunnerStorage`) on one host.
 *
 * Why it exists: no SQLite driver on the registry works with effect 4.1
 * (`@effect/sql-sqlite-node` stops at 4.0 betas, which import the old
 * `effect/unstable/sql/*` paths). Why it is internal: it is only as wide as
 * cluster storage needs (one connection, statements compiled for the sqlite
 * dialect, transactions); users name a database file and never see it, so it
 * can give way to an official driver without breaking anyone.
 *
 * Several processes (a submitter and its runners) share one database file:
 *
 * - WAL, so readers do not wait for the writer;
 * - a busy timeout, so a writer waits for another process's lock instead of
 *   failing at once with `SQLITE_BUSY` (node:sqlite is synchronous: the wait
 *   holds the event loop, which is why the default is a few seconds, not more);
 * - `BEGIN IMMEDIATE`, so a transaction that reads then writes takes the write
 *   lock up front: a deferred one that read an older snapshot fails with
 *   `SQLITE_BUSY_SNAPSHOT`, which no busy timeout retries.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Reactivity from "effect/reactivity/Reactivity"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as SqlClient from "effect/sql/SqlClient"
import type { Connection } from "effect/sql/SqlConnection"
import { classifySqliteError, SqlError } from "effect/sql/SqlError"
import * as Statement from "effect/sql/Statement"
import * as Stream from "effect/Stream"
import { DatabaseSync, type StatementSync } from "node:sqlite"

export interface Options {
  /** The database file (created if missing), or `":memory:"`. */
  readonly filename: string
  /** How long a statement waits for another connection's lock (default 5 seconds). */
  readonly busyTimeout?: Duration.Input | undefined
}

/** Prepared statements kept per connection; cluster storage uses a few dozen distinct texts. */
const statementCacheSize = 200

/**
 * `classifySqliteError` reads SQLite's numeric code from `code` or `errno`;
 * node:sqlite puts it in `errcode` (its `code` is the string `ERR_SQLITE_ERROR`).
 */
const sqlError = (cause: unknown, message: string, operation: string): SqlError => {
  const errcode = typeof cause === "object" && cause !== null ? (cause as { readonly errcode?: unknown }).errcode : undefined
  const classified = typeof errcode === "number"
    ? { code: errcode, errno: errcode, message: (cause as Error).message, cause }
    : cause
  return new SqlError({ reason: classifySqliteError(classified, { message, operation }) })
}

/**
 * Opens the database and returns a client for it; the database closes with
 * the scope.
 *
 * **Example** (A client on a file)
 *
 * ```ts
 * import { Effect } from "effect"
 * import * as SqlClient from "effect/sql/SqlClient"
 * import * as SqliteClient from "./SqliteClient.ts"
 *
 * const program = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   return yield* sql`SELECT 1 AS one`
 * }).pipe(Effect.provide(SqliteClient.layer({ filename: "cluster.db" })))
 * ```
 */
export const make = (options: Options): Effect.Effect<SqlClient.SqlClient, SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function*() {
    const busyTimeout = Duration.toMillis(Duration.fromInputUnsafe(options.busyTimeout ?? "5 seconds"))
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const db = new DatabaseSync(options.filename, { timeout: busyTimeout })
          try {
            db.exec("PRAGMA journal_mode = WAL")
            // In WAL mode NORMAL survives a crash of the process; only a power loss may drop the last commits.
            db.exec("PRAGMA synchronous = NORMAL")
          } catch (error) {
            db.close()
            throw error
          }
          return db
        },
        catch: (cause) => sqlError(cause, `Cannot open SQLite database ${options.filename}`, "connect")
      }),
      (db) => Effect.sync(() => db.close())
    )
    const connection = makeConnection(db)
    const acquirers = SqlClient.makeSqliteAcquirers({
      connection: Effect.succeed(connection),
      semaphore: yield* Semaphore.make(1),
      isTransaction: () => db.isTransaction
    })
    return yield* SqlClient.make({
      ...acquirers,
      compiler: Statement.makeCompilerSqlite(),
      driver: "sqlite-node",
      beginTransaction: "BEGIN IMMEDIATE",
      prepareTransactionControls: true,
      spanAttributes: [["db.system.name", "sqlite"]]
    })
  })

/**
 * The client as a layer: the database opens when the layer is built and
 * closes when its scope ends.
 *
 * **Example** (Cluster storage on a SQLite file)
 *
 * ```ts
 * import { Layer } from "effect"
 * import * as SqlMessageStorage from "effect/cluster/SqlMessageStorage"
 * import * as SqliteClient from "./SqliteClient.ts"
 *
 * const storage = SqlMessageStorage.layer.pipe(Layer.provide(SqliteClient.layer({ filename: "cluster.db" })))
 * ```
 */
export const layer = (options: Options): Layer.Layer<SqlClient.SqlClient, SqlError> =>
  Layer.effect(SqlClient.SqlClient, make(options)).pipe(Layer.provide(Reactivity.layer))

/** The one connection of a database: statements run synchronously, prepared once each. */
const makeConnection = (db: DatabaseSync): Connection => {
  // Least recently used statements go first (a Map iterates in insertion order).
  const statements = new Map<string, StatementSync>()
  const prepare = (sql: string): StatementSync => {
    let statement = statements.get(sql)
    if (statement !== undefined) {
      statements.delete(sql)
    } else {
      statement = db.prepare(sql)
      if (statements.size >= statementCacheSize) statements.delete(statements.keys().next().value!)
    }
    statements.set(sql, statement)
    return statement
  }

  const run = (
    sql: string,
    params: ReadonlyArray<unknown>,
    options: { readonly prepared: boolean; readonly arrays: boolean; readonly raw: boolean }
  ): Effect.Effect<any, SqlError> =>
    Effect.withFiber<any, SqlError>((fiber) => {
      try {
        const statement = options.prepared ? prepare(sql) : db.prepare(sql)
        statement.setReadBigInts(fiber.getRef(SqlClient.SafeIntegers))
        statement.setReturnArrays(options.arrays)
        const args = params as Array<any>
        if (statement.columns().length > 0) return Effect.succeed(statement.all(...args))
        const result = statement.run(...args)
        return Effect.succeed(options.raw ? result : [])
      } catch (cause) {
        return Effect.fail(sqlError(cause, "Failed to execute statement", "execute"))
      }
    })

  const rows = { prepared: true, arrays: false, raw: false }
  const values = { prepared: true, arrays: true, raw: false }
  const raw = { prepared: true, arrays: false, raw: true }
  const unprepared = { prepared: false, arrays: false, raw: false }
  const valuesUnprepared = { prepared: false, arrays: true, raw: false }

  return {
    execute: (sql, params, transformRows) =>
      transformRows ? Effect.map(run(sql, params, rows), transformRows) : run(sql, params, rows),
    executeRaw: (sql, params) => run(sql, params, raw),
    executeValues: (sql, params) => run(sql, params, values),
    executeValuesUnprepared: (sql, params) => run(sql, params, valuesUnprepared),
    executeUnprepared: (sql, params, transformRows) =>
      transformRows ? Effect.map(run(sql, params, unprepared), transformRows) : run(sql, params, unprepared),
    // node:sqlite is synchronous: the rows are read at once, then streamed.
    executeStream: (sql, params, transformRows) =>
      Stream.fromIterableEffect(
        transformRows ? Effect.map(run(sql, params, rows), transformRows) : run(sql, params, rows)
      )
  }
}


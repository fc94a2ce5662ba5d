/**
 * Where a cluster keeps its runners, shard locks and messages: a SQL
 * database named by one string, a SQLite file for one host or a Postgres URL
 * for several.
 *
 * Postgres goes through `@effect/sql-pg`, an optional peer dependency, loaded
 * only when a URL names it.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import * as SqliteClient from "./SqliteClient.ts"

/** Whether `db` names a Postgres database rather than a SQLite file. */
export const isPostgres = (db: string): boolean => /^postgres(ql)?:\/\//i.test(db)

/**
 * A client for the database `db`: a `postgres://` or `postgresql://` URL, or
 * else the path of a SQLite file (created if missing).
 *
 * **Example** (One host, then several)
 *
 * ```ts
 * sqlLayer("/var/lib/app/cluster.db")
 * sqlLayer("postgres://app@db.internal:5432/cluster")
 * ```
 */
export const sqlLayer = (db: string): Layer.Layer<SqlClient.SqlClient, SqlError> =>
  isPostgres(db)
    ? Layer.unwrap(Effect.map(importPg, (PgClient) => PgClient.layer({ url: Redacted.make(db) })))
    : SqliteClient.layer({ filename: db })

const importPg = Effect.tryPromise({
  try: () => import("@effect/sql-pg/PgClient"),
  catch: (cause) =>
    new Error(`A postgres:// database needs the package @effect/sql-pg (npm install @effect/sql-pg): ${String(cause)}`, { cause })
}).pipe(Effect.orDie)

/**
 * The pipeline, written as plain sequential code: page through the users and
 * submit one `extractUser` task each. Whether it runs serially or in parallel
 * is the layer it is given.
 */
import { Effect } from "effect"
import { DatabaseSync } from "node:sqlite"
import { BlogClient, extractUser } from "./tasks.ts"

export const extractAll = Effect.gen(function*() {
  const client = yield* BlogClient
  let page = 1
  let pages = 1
  do {
    const result = yield* client.usersPage(page)
    pages = result.pages
    for (const user of result.users) yield* extractUser(user)
  } while (++page <= pages)
})

/** Creates the tables if needed; the pipeline's upserts keep them free of duplicates. */
export const prepareDatabase = (path: string) =>
  Effect.sync(() => {
    const db = new DatabaseSync(path)
    db.exec(`
      PRAGMA journal_mode = WAL;
      CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS posts (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users (id),
        title TEXT NOT NULL,
        words INTEGER NOT NULL,
        top_words TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        compressed_bytes INTEGER NOT NULL
      );
    `)
    db.close()
  })

export interface RowCounts {
  readonly users: number
  readonly posts: number
}

export const countRows = (path: string) =>
  Effect.sync((): RowCounts => {
    const db = new DatabaseSync(path, { readOnly: true })
    const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n
    const counts = { users: count("users"), posts: count("posts") }
    db.close()
    return counts
  })

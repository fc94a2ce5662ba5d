/**
 * `WorkerLocal`: one SQLite connection per lane, opened by the first task that
 * needs it and closed when the pool closes. A connection is never used by two
 * tasks at once, so code that is not safe to share stays simple.
 *
 *   npx node examples/worker-local.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Task, TaskPool, WorkerLocal } from "effect-lateral"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"

const directory = mkdtempSync(join(tmpdir(), "lateral-worker-local-"))
const path = join(directory, "events.db")
const opened: Array<number> = []

const connection = WorkerLocal.make(
  Effect.acquireRelease(
    Effect.sync(() => {
      const db = new DatabaseSync(path, { timeout: 5_000 })
      opened.push(opened.length + 1)
      return { id: opened.length, db }
    }),
    ({ db }) => Effect.sync(() => db.close())
  )
)

const saveEvent = Task.make("saveEvent", (id: number) =>
  Effect.gen(function*() {
    const { db, id: connectionId } = yield* connection
    yield* Effect.sleep("10 millis") // the time it takes to produce the event
    db.prepare("INSERT OR REPLACE INTO events (id, connection) VALUES (?, ?)").run(id, connectionId)
  }))

const program = Effect.gen(function*() {
  const setup = new DatabaseSync(path)
  setup.exec("PRAGMA journal_mode = WAL; CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, connection INTEGER)")
  setup.close()

  yield* Effect.gen(function*() {
    for (let id = 0; id < 200; id++) yield* saveEvent(id)
  }).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 4 })))

  const check = new DatabaseSync(path)
  const { rows, connections } = check.prepare("SELECT count(*) AS rows, count(DISTINCT connection) AS connections FROM events").get() as {
    rows: number
    connections: number
  }
  check.close()
  yield* Console.log(`${rows} events saved through ${connections} connections (maxWorkers: 4, opened: ${opened.length})`)
}).pipe(Effect.ensuring(Effect.sync(() => rmSync(directory, { recursive: true, force: true }))))

NodeRuntime.runMain(program)

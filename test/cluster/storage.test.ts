/**
 * `effect/cluster`'s SQL storage on the databases runners use: SQLite
 * through our `node:sqlite` client, always; Postgres through `@effect/sql-pg`
 * when `LATERAL_TEST_PG_URL` names a database to use (each test makes its own
 * tables and drops them).
 */
import { assert, describe, it } from "@effect/vitest"
import { NodeCrypto } from "@effect/platform-node"
import { Context, Effect, Layer, Option, Schema } from "effect"
import {
  ClusterSchema,
  Entity,
  Runner,
  RunnerAddress,
  RunnerHealth,
  Runners,
  Sharding,
  ShardingConfig,
  ShardId,
  SqlMessageStorage,
  SqlRunnerStorage
} from "effect/cluster"
import { Rpc } from "effect/rpc"
import * as SqlClient from "effect/sql/SqlClient"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Deploy from "../../src/internal/cluster/deploy.ts"
import { sqlLayer } from "../../src/internal/cluster/storage.ts"

interface Backend {
  readonly name: string
  /** A database for one test, and the table prefix to use in it. */
  readonly fresh: () => { readonly db: string; readonly prefix: string }
}

let tests = 0
const backends: ReadonlyArray<Backend> = [
  { name: "SQLite", fresh: () => ({ db: join(mkdtempSync(join(tmpdir(), "lateral-storage-")), "cluster.db"), prefix: "cluster" }) },
  ...(process.env.LATERAL_TEST_PG_URL
    ? [{ name: "Postgres", fresh: () => ({ db: process.env.LATERAL_TEST_PG_URL!, prefix: `t${process.pid}_${tests++}` }) }]
    : [])
]

/** A client on `db` for as long as the test's scope, and its tables with `prefix` dropped at the end. */
const connect = (db: string, prefix: string) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(sqlLayer(db))
    const sql = Context.get(context, SqlClient.SqlClient)
    yield* Effect.addFinalizer(() =>
      sql.onDialectOrElse({
        pg: () =>
          Effect.gen(function*() {
            const tables = yield* sql<{ readonly tablename: string }>`SELECT tablename FROM pg_tables WHERE tablename LIKE ${prefix + "\\_%"}`
            for (const { tablename } of tables) yield* sql`DROP TABLE ${sql(tablename)}`
          }),
        orElse: () => Effect.void
      }).pipe(Effect.orDie)
    )
    return context
  })

/** A `RunnerStorage` on its own connection, as each runner has one. */
const runnerStorage = (db: string, prefix: string, group = "default") =>
  Effect.flatMap(connect(db, prefix), (context) =>
    SqlRunnerStorage.make({ prefix }).pipe(
      Effect.provideContext(context),
      Effect.provide(ShardingConfig.layer({ shardsPerGroup: 10, availableShardGroups: [group], assignedShardGroups: [group] }))
    ))

const shardsOf = (group: string) => Array.from({ length: 10 }, (_, i) => ShardId.make(group, i + 1))
const ids = (list: ReadonlyArray<ShardId.ShardId>) => list.map((shard) => shard.id).sort((a, b) => a - b)

/** A persisted RPC, deduplicated by its `id`. */
const Add = Rpc.make("Add", {
  payload: { id: Schema.String, n: Schema.Number },
  success: Schema.Number,
  primaryKey: ({ id }) => id
}).annotate(ClusterSchema.Persisted, true)
const Counter = Entity.make("Counter", [Add])

for (const backend of backends) {
  describe(`cluster storage on ${backend.name}`, () => {
    it.live("SqlRunnerStorage: runners register, lock shards against each other, refresh and release them", () =>
      Effect.gen(function*() {
        const { db, prefix } = backend.fresh()
        const [one, two] = [yield* runnerStorage(db, prefix), yield* runnerStorage(db, prefix)]
        const [a, b] = [RunnerAddress.make("127.0.0.1", 1), RunnerAddress.make("127.0.0.1", 2)]
        const machineA = yield* one.register(Runner.make({ address: a, groups: ["default"], weight: 1 }), true)
        const machineB = yield* two.register(Runner.make({ address: b, groups: ["default"], weight: 1 }), true)
        assert.notStrictEqual(machineA, machineB)
        yield* two.setRunnerHealth(a, false)
        const runners = yield* one.getRunners
        assert.deepStrictEqual(runners.map(([runner, healthy]) => [runner.address.port, healthy]).sort(), [[1, false], [2, true]])

        const shards = shardsOf("default")
        assert.deepStrictEqual(ids(yield* one.acquire(a, shards.slice(0, 6))), [1, 2, 3, 4, 5, 6])
        assert.deepStrictEqual(ids(yield* two.acquire(b, shards)), [7, 8, 9, 10], "b gets only the shards a does not hold")
        assert.deepStrictEqual(ids(yield* one.refresh(a, shards.slice(0, 6))), [1, 2, 3, 4, 5, 6])
        yield* one.release(a, shards[0]!)
        assert.deepStrictEqual(ids(yield* two.acquire(b, shards)), [1, 7, 8, 9, 10])
        yield* one.releaseAll(a)
        assert.deepStrictEqual(ids(yield* two.acquire(b, shards)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        assert.deepStrictEqual(ids(yield* one.refresh(a, shards)), [], "a's locks are gone")
        yield* one.unregister(a)
        assert.deepStrictEqual((yield* two.getRunners).map(([runner]) => runner.address.port), [2])
      }))

    it.live("two deploys on one database each hold all of their own shards", () =>
      Effect.gen(function*() {
        const { db, prefix } = backend.fresh()
        // A deploy's tables and shard group are both named after it (see Deploy).
        const [v1, v2] = [Deploy.make(`${prefix}_v1`).name, Deploy.make(`${prefix}_v2`).name]
        const [one, two] = [yield* runnerStorage(db, v1, v1), yield* runnerStorage(db, v2, v2)]
        assert.strictEqual((yield* one.acquire(RunnerAddress.make("127.0.0.1", 1), shardsOf(v1))).length, 10)
        assert.strictEqual((yield* two.acquire(RunnerAddress.make("127.0.0.1", 2), shardsOf(v2))).length, 10)
      }))

    it.live("SqlMessageStorage: a persisted request is stored, answered once, and deduplicated by its primary key", () =>
      Effect.gen(function*() {
        const { db, prefix } = backend.fresh()
        const context = yield* connect(db, prefix)
        let handled = 0
        let total = 0
        const counter = Counter.toLayer(Counter.of({
          Add: ({ payload }) =>
            Effect.sync(() => {
              handled++
              return total += payload.n
            })
        }))
        // One runner with SQL storage and no network, as `SingleRunner` builds it.
        const cluster = Sharding.layer.pipe(
          Layer.provideMerge(Runners.layerNoop),
          Layer.provideMerge(SqlMessageStorage.layerWith({ prefix })),
          Layer.provide([SqlRunnerStorage.layerWith({ prefix }), RunnerHealth.layerNoop, NodeCrypto.layerDigest]),
          Layer.provide(ShardingConfig.layer({
            runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", 1)),
            shardsPerGroup: 10,
            entityMessagePollInterval: "200 millis"
          })),
          Layer.provide(Layer.succeedContext(context)),
          Layer.orDie
        )
        const replies = yield* Effect.gen(function*() {
          const client = (yield* Counter.client)("counter-1")
          return [
            yield* client.Add({ id: "first", n: 2 }),
            yield* client.Add({ id: "second", n: 3 }),
            yield* client.Add({ id: "first", n: 2 })
          ]
        }).pipe(Effect.provide(counter.pipe(Layer.provideMerge(cluster))), Effect.timeout("20 seconds"))
        assert.deepStrictEqual(replies, [2, 5, 2], "the resent request gets the first reply")
        assert.strictEqual(handled, 2)
        const sql = Context.get(context, SqlClient.SqlClient)
        const count = (table: string) => Effect.map(sql<{ readonly n: number }>`SELECT count(*) AS n FROM ${sql(`${prefix}_${table}`)}`, (rows) => Number(rows[0]!.n))
        assert.deepStrictEqual([yield* count("messages"), yield* count("replies")], [2, 2])
      }))
  })
}

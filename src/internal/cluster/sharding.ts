/**
 * A process's membership of a cluster, on `effect/cluster` over Node
 * sockets: a runner (serves shards on a port) or a client only (sends to the
 * runners). Both sides of one deploy must agree on the storage tables, the
 * shard group and `shardsPerGroup`, so both are built here.
 *
 * The settings come from the options only. (`NodeClusterSocket.layer` would
 * also read `HOST`, `PORT`, `SHARD_GROUPS`... from the environment, where a
 * `PORT` meant for something else would move the runner, or fail it.)
 *
 * @internal
 */
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as NodeCrypto from "@effect/platform-node/NodeCrypto"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as MessageStorage from "effect/cluster/MessageStorage"
import * as RunnerAddress from "effect/cluster/RunnerAddress"
import * as RunnerHealth from "effect/cluster/RunnerHealth"
import * as RunnerStorage from "effect/cluster/RunnerStorage"
import * as Runners from "effect/cluster/Runners"
import * as Sharding from "effect/cluster/Sharding"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as SocketRunner from "effect/cluster/SocketRunner"
import * as SqlMessageStorage from "effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "effect/cluster/SqlRunnerStorage"
import * as RpcSerialization from "effect/rpc/RpcSerialization"
import type { SocketServerError } from "effect/socket/SocketServer"
import type { SqlError } from "effect/sql/SqlError"
import type { ShardingSettings } from "./options.ts"
import type { Deploy } from "./deploy.ts"
import { sqlLayer } from "./storage.ts"

export interface MemberOptions {
  readonly deploy: Deploy
  /** A SQLite file, or a `postgres://` URL. */
  readonly db: string
  readonly sharding?: ShardingSettings | undefined
}

export interface RunnerAddressOptions {
  /** The host other members reach this runner at. */
  readonly host: string
  readonly port: number
  /** The interface to listen on, if not `host` (say, `0.0.0.0`). */
  readonly listenHost?: string | undefined
}

/** A runner: takes its share of the deploy's shards and serves them on `host:port`. */
export const runner = (
  options: MemberOptions & RunnerAddressOptions
): Layer.Layer<Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage, SocketServerError | SqlError> => {
  const address = RunnerAddress.make(options.host, options.port)
  const config = shardingConfig(options, {
    runnerAddress: Option.some(address),
    runnerListenAddress: options.listenHost === undefined
      ? Option.none()
      : Option.some(RunnerAddress.make(options.listenHost, options.port))
  })
  const health = RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(NodeClusterSocket.layerClientProtocol))
  return SocketRunner.layer.pipe(
    Layer.provide([NodeClusterSocket.layerSocketServer, NodeClusterSocket.layerClientProtocol, health]),
    Layer.provideMerge(storage(options)),
    Layer.provide([config, RpcSerialization.layerSchemaBinary()])
  )
}

/** A client only: reads the runners and their shards from storage and sends to them; serves nothing. */
export const client = (options: MemberOptions): Layer.Layer<Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage, SqlError> =>
  SocketRunner.layerClientOnly.pipe(
    Layer.provide(NodeClusterSocket.layerClientProtocol),
    Layer.provideMerge(storage(options)),
    Layer.provide([shardingConfig(options, { runnerAddress: Option.none() }), RpcSerialization.layerSchemaBinary()])
  )

/**
 * A runner and its clients in this process, with storage in memory and no
 * network: the pieces of `effect/cluster`'s `TestRunner`, but serving the
 * deploy's shard group (`TestRunner.layer` serves only `"default"`). For
 * tests of everything above the transport.
 */
export const memory = (deploy: Deploy): Layer.Layer<Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage> =>
  Sharding.layer.pipe(
    Layer.provideMerge(Runners.layerNoop),
    Layer.provideMerge(MessageStorage.layerMemory),
    Layer.provide([RunnerStorage.layerMemory, RunnerHealth.layerNoop]),
    Layer.provide(ShardingConfig.layer({ availableShardGroups: [deploy.name], assignedShardGroups: [deploy.name] }))
  )

/** The deploy's message and runner storage, in tables named after it. */
const storage = (options: MemberOptions) => {
  const prefix = options.deploy.name
  return SqlMessageStorage.layerWith({ prefix }).pipe(
    Layer.provideMerge(Layer.orDie(SqlRunnerStorage.layerWith({ prefix }))),
    Layer.provide(NodeCrypto.layerDigest),
    Layer.provide(sqlLayer(options.db))
  )
}

const shardingConfig = (options: MemberOptions, addresses: Partial<ShardingConfig.ShardingConfig["Service"]>) =>
  ShardingConfig.layer({
    ...options.sharding,
    ...addresses,
    availableShardGroups: [options.deploy.name],
    assignedShardGroups: [options.deploy.name]
  })

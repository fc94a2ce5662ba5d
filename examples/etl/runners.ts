/**
 * A cluster on this machine, for `npm run demo -- --runners N`: N runner
 * processes (`effect-lateral runner`, which an installed project starts with
 * `npx effect-lateral runner`) on free loopback ports, sharing a temporary
 * SQLite file as the cluster's storage and serving this directory's tasks.
 *
 * Every runner is stopped by its PID when the scope closes (SIGTERM, then
 * SIGKILL if it is still there after a grace period), so also when the demo
 * fails or is interrupted. `stop` does it earlier and reads what each runner
 * ran from the line it logs as it leaves.
 */
import { Effect, type Scope } from "effect"
import type { TaskPool } from "effect-lateral"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/** This directory: the root both the demo and its runners name task modules from. */
const root = fileURLToPath(new URL(".", import.meta.url))
const bin = fileURLToPath(new URL("../../src/bin.ts", import.meta.url))

/**
 * Lock timings for runners that start and stop within seconds on one
 * machine: a runner that joins gets its share of the shards within a second
 * or two, rather than after effect/cluster's defaults (locks kept 35 s,
 * refreshed every 10 s). Every member of a cluster needs the same values.
 */
const sharding = {
  shardLockExpiration: "5 seconds",
  shardLockRefreshInterval: "1 second",
  refreshAssignmentsInterval: "1 second",
  entityMessagePollInterval: "1 second"
} as const satisfies TaskPool.ShardingSettings

export interface RunnerReport {
  readonly address: string
  /** Tasks the runner ran, whatever their outcome. */
  readonly ran: number
}

export interface LocalCluster {
  /** What `TaskPool.layerCluster` needs to reach the runners. */
  readonly options: Pick<TaskPool.ClusterOptions, "db" | "root" | "sharding">
  /** Each runner's address and process id. */
  readonly runners: ReadonlyArray<{ readonly address: string; readonly pid: number }>
  /** Stops every runner and returns what each ran. */
  readonly stop: Effect.Effect<ReadonlyArray<RunnerReport>>
}

interface Runner {
  readonly address: string
  readonly child: ChildProcess
  readonly exited: Promise<void>
  readonly output: () => string
}

/** A port nothing listens on now (the OS picks it), on 127.0.0.1. */
const freePort = Effect.callback<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    server.close(() => resume(Effect.succeed(typeof address === "object" && address ? address.port : 0)))
  })
})

const startRunner = (port: number, db: string): Runner => {
  const args = [
    bin,
    "runner",
    ...["--host", "127.0.0.1", "--port", String(port), "--db", db],
    ...["--root", root, "--module", join(root, "tasks.ts"), "--threads", "1"],
    ...Object.entries(sharding).flatMap(([key, value]) => ["--sharding", `${key}=${value}`])
  ]
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout!.on("data", (data) => (output += data))
  child.stderr!.on("data", (data) => (output += data))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  return { address: `127.0.0.1:${port}`, child, exited, output: () => output }
}

/** SIGTERM by PID (the runner leaves the cluster), then SIGKILL after `grace`; resolves once it has exited. */
const stopRunner = async (runner: Runner, grace = 10_000): Promise<void> => {
  const { child } = runner
  const kill = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, signal)
  }
  kill("SIGTERM")
  const timer = setTimeout(() => kill("SIGKILL"), grace)
  await runner.exited
  clearTimeout(timer)
}

/** Resolves once the runner has imported its task modules (it then joins the cluster), or fails if it exits first. */
const started = (runner: Runner) =>
  Effect.callback<void, Error>((resume) => {
    const check = () => {
      if (runner.output().includes(" serves ")) resume(Effect.void)
    }
    runner.child.stdout!.on("data", check)
    runner.child.stderr!.on("data", check)
    runner.child.once("exit", () => resume(Effect.fail(new Error(`runner ${runner.address} exited:\n${runner.output()}`))))
    check()
  }).pipe(Effect.timeoutOrElse({
    duration: "60 seconds",
    orElse: () => Effect.fail(new Error(`runner ${runner.address} did not start:\n${runner.output()}`))
  }))

/** What a runner logged it ran as it left the cluster. */
const reportOf = (runner: Runner): RunnerReport => {
  const ran = new RegExp(`Runner ${runner.address.replace(/\./g, "\\.")} ran (\\d+) tasks`).exec(runner.output())
  return { address: runner.address, ran: ran === null ? 0 : Number(ran[1]) }
}

/** Starts `count` runners in the current scope; closing it stops them all. */
export const start = (count: number): Effect.Effect<LocalCluster, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const directory = mkdtempSync(join(tmpdir(), "lateral-demo-cluster-"))
    const db = join(directory, "cluster.db")
    const runners: Array<Runner> = []
    const stopAll = Effect.promise(() => Promise.all(runners.map((runner) => stopRunner(runner))))
    yield* Effect.addFinalizer(() => Effect.andThen(stopAll, Effect.sync(() => rmSync(directory, { recursive: true, force: true }))))
    for (let i = 0; i < count; i++) runners.push(startRunner(yield* freePort, db))
    yield* Effect.forEach(runners, started, { concurrency: "unbounded", discard: true })
    return {
      options: { db, root, sharding },
      runners: runners.map((runner) => ({ address: runner.address, pid: runner.child.pid! })),
      stop: Effect.map(stopAll, () => runners.map(reportOf))
    }
  })

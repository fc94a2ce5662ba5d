/**
 * Runner processes for tests and benchmarks: each started with the
 * `effect-lateral runner` command on a free loopback port, tracked by PID,
 * and stopped by PID (SIGTERM, then SIGKILL).
 */
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url))
const bin = fileURLToPath(new URL("../../src/bin.ts", import.meta.url))

/** Lock timings short enough for a test to see a failover within seconds. */
export const fastFailover = {
  shardLockExpiration: "5 seconds",
  shardLockRefreshInterval: "1 second",
  refreshAssignmentsInterval: "1 second",
  runnerHealthCheckInterval: "2 seconds",
  entityMessagePollInterval: "1 second",
  entityReplyPollInterval: "100 millis",
  sendRetryInterval: "100 millis",
  entityTerminationTimeout: "2 seconds"
} as const

export interface RunnerProcess {
  readonly port: number
  readonly address: string
  readonly child: ChildProcess
  /** Resolves with the exit code (or the signal) once the process has ended. */
  readonly exited: Promise<number | NodeJS.Signals>
  readonly output: () => string
}

/** A port nothing listens on now (the OS picks it), on 127.0.0.1. */
export const freePort = Effect.callback<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    server.close(() => resume(Effect.succeed(typeof address === "object" && address ? address.port : 0)))
  })
})

/** Starts `effect-lateral runner` serving `modules`, with `fastFailover` timings. */
export const startRunner = (options: {
  readonly port: number
  readonly db: string
  readonly modules: ReadonlyArray<string>
  readonly threads: number
  readonly deploy?: string | undefined
  readonly env?: Record<string, string> | undefined
}): RunnerProcess => {
  const args = [
    bin,
    "runner",
    "--host",
    "127.0.0.1",
    "--port",
    String(options.port),
    "--db",
    options.db,
    "--threads",
    String(options.threads),
    ...options.modules.flatMap((module) => ["--module", module]),
    ...(options.deploy === undefined ? [] : ["--deploy", options.deploy]),
    ...Object.entries(fastFailover).flatMap(([key, value]) => ["--sharding", `${key}=${value}`])
  ]
  const child = spawn(process.execPath, args, { cwd: repoRoot, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout!.on("data", (data) => (output += data))
  child.stderr!.on("data", (data) => (output += data))
  const exited = new Promise<number | NodeJS.Signals>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal!)))
  return { port: options.port, address: `127.0.0.1:${options.port}`, child, exited, output: () => output }
}

const alive = (runner: RunnerProcess) => runner.child.exitCode === null && runner.child.signalCode === null

/** Sends `signal` to the runner's PID, if it still runs. */
export const signal = (runner: RunnerProcess, signal: NodeJS.Signals): void => {
  if (alive(runner) && runner.child.pid !== undefined) process.kill(runner.child.pid, signal)
}

/** Stops every runner by PID: SIGTERM, then SIGKILL for any still running after `grace`. */
export const stopAll = (runners: ReadonlyArray<RunnerProcess>, grace = 5_000): Promise<void> =>
  Promise.all(runners.map(async (runner) => {
    signal(runner, "SIGTERM")
    const timer = setTimeout(() => signal(runner, "SIGKILL"), grace)
    await runner.exited
    clearTimeout(timer)
  })).then(() => undefined)

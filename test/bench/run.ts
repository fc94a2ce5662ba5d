/**
 * Runs every benchmark suite, one fresh process each (`--expose-gc`, so the
 * harness collects between samples), and prints their markdown tables under
 * one line naming the machine and the versions compared.
 *
 *   npm run bench                    (the full run: several minutes)
 *   BENCH_QUICK=1 npm run bench      (a smoke test of every row)
 *   npm run bench -- threads.ts      (one suite)
 *
 * Environment: `BENCH_QUICK`, `BENCH_REPETITIONS` and `BENCH_WARMUPS` (see
 * measure.ts), and each suite's own sizes (see the top of inProcess.ts,
 * threads.ts and cluster.ts). Figures are printed, never asserted.
 */
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { machine, quick } from "./measure.ts"

const suites = ["inProcess.ts", "threads.ts", "cluster.ts"]
const chosen = process.argv.length > 2 ? process.argv.slice(2) : suites
for (const suite of chosen) if (!suites.includes(suite)) throw new Error(`unknown suite ${suite}; the suites: ${suites.join(", ")}`)

const versionOf = (name: string) =>
  (JSON.parse(readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), "utf8")) as { version: string }).version

console.log(`# Benchmarks\n`)
console.log(`${machine()}; effect ${versionOf("effect")}, piscina ${versionOf("piscina")}, tinypool ${versionOf("tinypool")}, p-limit ${versionOf("p-limit")}${quick ? "; quick mode (BENCH_QUICK=1): sizes are for smoke tests, not for figures" : ""}.\n`)
for (const suite of chosen) {
  const result = spawnSync(process.execPath, ["--expose-gc", fileURLToPath(new URL(suite, import.meta.url))], { stdio: "inherit" })
  if (result.status !== 0) {
    console.error(`${suite} failed (${result.signal ?? `exit code ${result.status}`})`)
    process.exitCode = 1
  }
}

/**
 * Runs every benchmark, one process each, and prints their tables.
 *
 *   npm run bench
 */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

for (const file of ["inProcess.ts", "threads.ts"]) {
  const path = fileURLToPath(new URL(file, import.meta.url))
  process.stdout.write(execFileSync(process.execPath, [path], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }))
}

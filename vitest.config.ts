import { defineConfig } from "vitest/config"

export default defineConfig({
  // In this repository "effect-lateral" resolves to `src/` through this exports
  // condition (consumers get `dist/`). Vitest also passes it to its worker
  // processes as `--conditions`, so the worker threads they start inherit it.
  ssr: { resolve: { conditions: ["effect-lateral-source"] } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})

import { assert, describe, it } from "@effect/vitest"
import { compare, type Comparison, table } from "./bench/measure.ts"

// The harness of `npm run bench` (the suites themselves print figures and are not run here:
// `BENCH_QUICK=1 npm run bench` is their smoke test).
describe("benchmark harness", () => {
  it("warms every variant up, then samples them interleaved", async () => {
    const calls: Array<string> = []
    const variant = (name: string) => ({ name, run: async () => calls.push(name) })
    const comparison = await compare([variant("a"), variant("b"), variant("c")], 2, 1)
    assert.deepStrictEqual(calls, ["a", "b", "c", "a", "b", "c", "a", "b", "c"])
    assert.deepStrictEqual(comparison.rows.map(({ name, samples }) => [name, samples.seconds!.length]), [["a", 2], ["b", 2], ["c", 2]])
  })

  it("keeps every metric of self-measuring variants", async () => {
    let call = 0
    const comparison = await compare([{ name: "child", sample: async () => ({ first: ++call, second: 10 * call }) }], 3, 1)
    assert.deepStrictEqual(comparison.rows[0]!.samples, { first: [2, 3, 4], second: [20, 30, 40] })
  })

  it("reports median, minimum, maximum and ratios against the first row", () => {
    const comparison: Comparison = {
      repetitions: 3,
      warmups: 1,
      loadBefore: [1, 2, 3],
      loadAfter: [4, 5, 6],
      rows: [
        { name: "anchor", samples: { seconds: [2, 1, 3] } },
        { name: "slower", samples: { seconds: [4, 6, 5] } }
      ]
    }
    const time = table("title", comparison, { rates: [[100, "tasks/s"]] })
    assert.include(time, "load 1.00 2.00 3.00 at start, 4.00 5.00 6.00 at end; 3 interleaved samples")
    assert.include(time, "| anchor | 2.000 | 1.000 | 3.000 | 1.00x | 1.00x | 50 |")
    assert.include(time, "| slower | 5.000 | 4.000 | 6.000 | 2.50x | 4.00x | 20 |")
    const speedup = table("title", comparison, { ratio: "speedup", unit: "ms" })
    assert.include(speedup, "| slower | 5000.0 | 4000.0 | 6000.0 | 0.40x | 0.25x |")
  })
})

/**
 * One sample of the start-up benchmark, run by `threads.ts` in a fresh
 * process per sample: imports what the variant needs, starts its pool (or
 * worker) and sends one tiny task; prints, in seconds, the time from the
 * pool's creation to the first result and from the process's start to it.
 *
 *   node test/bench/startupChild.ts <variant>
 */

/** Per variant: import the library, then return what starts the pool and calls `done` with the first result. */
const variants: Record<string, () => Promise<(done: (result: unknown) => void) => void>> = {
  lateral1: () => lateral(1),
  lateral2: () => lateral(2),
  piscina: async () => {
    const { Piscina } = await import("piscina")
    return (done) => {
      new Piscina({ filename: workFile, minThreads: 1, maxThreads: 1 }).run(1, { name: "addOne" }).then(done)
    }
  },
  tinypool: async () => {
    const { Tinypool } = await import("tinypool")
    return (done) => {
      new Tinypool({ filename: workFile, minThreads: 1, maxThreads: 1 }).run(1, { name: "addOne" }).then(done)
    }
  },
  rawEffect: () => raw({ importEffect: true, startOnly: true }),
  rawEmpty: () => raw({ startOnly: true })
}

const workFile = new URL("./tasks/work.ts", import.meta.url).href

const lateral = async (threads: number) => {
  const { Effect } = await import("effect")
  const { Task, TaskPool } = await import("effect-lateral")
  const { addOne } = await import("./tasks/portable.ts")
  return (done: (result: unknown) => void) => {
    Effect.runFork(Effect.flatMap(addOne(1), Task.await).pipe(
      Effect.tap((result) => Effect.sync(() => done(result))),
      Effect.provide(TaskPool.layer({ threads }))
    ))
  }
}

const raw = async (workerData: { readonly importEffect?: boolean; readonly startOnly: true }) => {
  const { RawPool } = await import("./rawPool.ts")
  return (done: (result: unknown) => void) => {
    new RawPool(1, workerData).run("echo", 2).then(done)
  }
}

const start = await variants[process.argv[2]!]!()
const created = performance.now()
start((result) => {
  const answered = performance.now()
  if (result !== 2) throw new Error(`the first result is ${String(result)}, not 2`)
  process.stdout.write(JSON.stringify({ fromCreation: (answered - created) / 1000, sinceProcessStart: answered / 1000 }))
  process.exit(0)
})

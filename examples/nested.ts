/**
 * Nested tasks: a task that submits tasks, and `Task.group` to wait for a
 * batch and collect its results. Each account's orders are fetched page by
 * page, every page as a task of its own; the totals come from the group.
 *
 *   npx node examples/nested.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Task, TaskPool } from "effect-lateral"

interface Order {
  readonly account: string
  readonly amount: number
}

const accounts = ["acme", "globex", "initech", "umbrella"]
const pagesPerAccount = 3

// Pretend each page of orders takes a network round trip.
const fetchOrderPage = Task.make("fetchOrderPage", (account: string, page: number) =>
  Effect.sleep("100 millis").pipe(
    Effect.as<ReadonlyArray<Order>>(Array.from({ length: 5 }, (_, i) => ({ account, amount: page * 10 + i })))
  ))

// A task that fans out: one task per page. The group waits for them, and the
// account task gives its lane up while it waits, so any maxWorkers works.
const totalForAccount = Task.make("totalForAccount", (account: string) =>
  Effect.gen(function*() {
    const pages = yield* Task.group(
      Effect.gen(function*() {
        for (let page = 1; page <= pagesPerAccount; page++) yield* fetchOrderPage(account, page)
      }),
      { results: [fetchOrderPage] }
    )
    const orders = pages.results(fetchOrderPage).flat()
    return { account, orders: orders.length, total: orders.reduce((sum, order) => sum + order.amount, 0) }
  }))

const program = Effect.gen(function*() {
  const started = Date.now()
  const report = yield* Task.group(Effect.forEach(accounts, (account) => totalForAccount(account), { discard: true }), {
    results: [totalForAccount]
  })
  for (const line of [...report.results(totalForAccount)].sort((a, b) => a.account.localeCompare(b.account))) {
    yield* Console.log(`${line.account}: ${line.orders} orders, total ${line.total}`)
  }
  // 12 pages of 100 ms each, 16 at a time: about one round trip.
  yield* Console.log(`fetched ${accounts.length * pagesPerAccount} pages in ${Date.now() - started} ms`)
}).pipe(Effect.provide(TaskPool.layer({ maxWorkers: 16 })))

NodeRuntime.runMain(program)

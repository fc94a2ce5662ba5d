/**
 * pylateral's README example, in effect-lateral: request five pages in
 * parallel and print them; "Complete!" prints once every request is done.
 *
 *   npx node examples/quickstart.ts
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { HttpClient } from "effect/http"
import { Task, TaskPool } from "effect-lateral"
import { LocalSites } from "./support/LocalSites.ts"

// A task: calling it submits the request to the pool, and the caller goes on.
const requestAndPrint = Task.make("requestAndPrint", (url: string) =>
  HttpClient.get(url).pipe(
    Effect.flatMap((response) => response.text),
    Effect.flatMap((body) => Console.log(`${url}: ${body}`)),
    Effect.catch((error) => Console.log(`${url}: failed (${error.reason._tag})`))
  ))

const program = Effect.gen(function*() {
  const sites = yield* LocalSites
  const urls = ["/nytimes", "/cnn", "/wsj", "/bbc"].map(sites.url).concat(sites.unreachable)

  // The pool's scope ends only when every task is done.
  yield* Effect.gen(function*() {
    for (const url of urls) yield* requestAndPrint(url)
  }).pipe(Effect.provide(TaskPool.layer()))

  yield* Console.log("Complete!")
})

program.pipe(
  Effect.provide(Layer.mergeAll(LocalSites.layer, NodeHttpClient.layerUndici)),
  NodeRuntime.runMain
)

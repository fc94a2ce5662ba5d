/**
 * A few web pages served on loopback, so the examples need no internet.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import { HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"

const pages: Record<string, string> = {
  "/nytimes": "All the News That's Fit to Print",
  "/cnn": "Breaking News, Latest News and Videos",
  "/wsj": "Business, Finance and Economic News",
  "/bbc": "Home - BBC News"
}

/** Each page answers after a short delay, like a real site would. */
const app = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const page = pages[new URL(request.url, "http://localhost").pathname]
  yield* Effect.sleep("50 millis")
  return page === undefined ? HttpServerResponse.text("not found", { status: 404 }) : HttpServerResponse.text(page)
})

/** The base URL of the local sites, and a URL where nothing listens. */
export class LocalSites extends Context.Service<LocalSites, {
  readonly url: (path: string) => string
  readonly unreachable: string
}>()("examples/LocalSites") {
  static readonly layer = Layer.effect(
    LocalSites,
    Effect.gen(function*() {
      const base = HttpServer.formatAddress((yield* HttpServer.HttpServer).address)
      return { url: (path: string) => base + path, unreachable: "http://127.0.0.1:9/" }
    })
  ).pipe(
    Layer.provideMerge(HttpServer.serve()(app)),
    Layer.provide(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
  )
}

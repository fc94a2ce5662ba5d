/**
 * The blog API the demo extracts from, served on loopback so the demo needs
 * no internet: users, each with paginated posts. Each call takes 20-80 ms,
 * and a few answer 503 Service Unavailable, as real APIs do.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import { Post, PostsPage, User, UsersPage } from "./domain.ts"

export interface ApiOptions {
  readonly users: number
  readonly postsPerUser: number
  /** The share of calls answered with a 503, between 0 and 1. */
  readonly unavailable: number
}

const usersPerPage = 10
const postsPerPage = 4
const vocabulary = (
  "data pipeline extract load transform task pool worker lane thread fiber effect schema " +
  "record batch stream queue scope layer retry backoff latency throughput warehouse table " +
  "index query cursor page user post comment author draft review publish archive"
).split(" ")

/** A small deterministic generator, so that every run serves the same data. */
const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const userOf = (id: number) => new User({ id, name: `User ${id}`, email: `user${id}@example.com` })

const postOf = (userId: number, index: number) => {
  const id = userId * 1000 + index
  const random = mulberry32(id)
  const words = Array.from({ length: 600 + Math.floor(random() * 600) }, () => vocabulary[Math.floor(random() * vocabulary.length)]!)
  return new Post({ id, userId, title: `Post ${index} of user ${userId}`, body: words.join(" ") })
}

const pageOf = <A>(items: ReadonlyArray<A>, page: number, size: number) => ({
  items: items.slice((page - 1) * size, page * size),
  pages: Math.max(1, Math.ceil(items.length / size))
})

const PageQuery = Schema.Struct({ page: Schema.optional(Schema.NumberFromString) })
const UserPostsParams = Schema.Struct({ id: Schema.NumberFromString, page: Schema.optional(Schema.NumberFromString) })

/** The running API: where it listens, and how many calls it answered. */
export class BlogApi extends Context.Service<BlogApi, {
  readonly url: string
  readonly calls: () => { readonly total: number; readonly unavailable: number }
}>()("examples/etl/BlogApi") {
  static readonly layer = (options: ApiOptions) =>
    Layer.unwrap(Effect.sync(() => {
      const random = mulberry32(42)
      const counts = { total: 0, unavailable: 0 }
      // Latency, and now and then a 503 the client must retry.
      const respond = <A, I>(schema: Schema.Codec<A, I>, body: A) =>
        Effect.gen(function*() {
          counts.total++
          yield* Effect.sleep(20 + Math.floor(random() * 60))
          if (random() < options.unavailable) {
            counts.unavailable++
            return HttpServerResponse.text("try again later", { status: 503 })
          }
          return yield* HttpServerResponse.json(Schema.encodeSync(schema)(body))
        })

      const users = HttpRouter.add(
        "GET",
        "/users",
        Effect.gen(function*() {
          const { page = 1 } = yield* HttpRouter.schemaParams(PageQuery)
          const all = Array.from({ length: options.users }, (_, i) => userOf(i + 1))
          const { items, pages } = pageOf(all, page, usersPerPage)
          return yield* respond(UsersPage, { users: items, page, pages })
        })
      )
      const posts = HttpRouter.add(
        "GET",
        "/users/:id/posts",
        Effect.gen(function*() {
          const { id, page = 1 } = yield* HttpRouter.schemaParams(UserPostsParams)
          const all = id >= 1 && id <= options.users
            ? Array.from({ length: options.postsPerUser }, (_, i) => postOf(id, i + 1))
            : []
          const { items, pages } = pageOf(all, page, postsPerPage)
          return yield* respond(PostsPage, { posts: items, page, pages })
        })
      )

      const api = Layer.effect(
        BlogApi,
        HttpServer.HttpServer.useSync((server) => ({
          url: HttpServer.formatAddress(server.address),
          calls: () => ({ ...counts })
        }))
      )
      return api.pipe(
        Layer.provideMerge(HttpRouter.serve(Layer.mergeAll(users, posts), { disableLogger: true, disableListenLog: true })),
        Layer.provide(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
      )
    }))
}

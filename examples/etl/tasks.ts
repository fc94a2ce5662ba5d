/**
 * The pipeline's tasks. Worker threads import this module to run
 * `transformPost`, so it only declares things.
 *
 * - extract: `extractUser` loads a user and its first page of posts, then
 *   fans out one `extractPostsPage` task per further page;
 * - transform: `transformPost` tokenizes, hashes and compresses a post on a
 *   worker thread (a portable task);
 * - load: each page's records are upserted into SQLite through the lane's own
 *   connection (`WorkerLocal`).
 */
import { Context, Effect, Layer, Schedule, Schema } from "effect"
import { HttpClient, HttpClientRequest, HttpClientResponse } from "effect/http"
import { Task, WorkerLocal } from "effect-lateral"
import { createHash } from "node:crypto"
import { DatabaseSync } from "node:sqlite"
import { deflateSync } from "node:zlib"
import { Post, PostRecord, PostsPage, type User, UsersPage } from "./domain.ts"

// -----------------------------------------------------------------------------
// extract

export class ApiError extends Schema.TaggedError<ApiError>()("ApiError", { path: Schema.String, reason: Schema.String }) {}

/** The blog API, as the pipeline sees it. A 503 is retried with exponential backoff. */
export class BlogClient extends Context.Service<BlogClient, {
  readonly usersPage: (page: number) => Effect.Effect<typeof UsersPage.Type, ApiError>
  readonly postsPage: (userId: number, page: number) => Effect.Effect<typeof PostsPage.Type, ApiError>
}>()("examples/etl/BlogClient") {
  static readonly layer = (url: string) =>
    Layer.effect(
      BlogClient,
      Effect.gen(function*() {
        const client = (yield* HttpClient.HttpClient).pipe(
          HttpClient.mapRequest(HttpClientRequest.prependUrl(url)),
          HttpClient.filterStatusOk,
          HttpClient.retryTransient({ schedule: Schedule.exponential("20 millis"), times: 8 })
        )
        const get = <A, I>(path: string, schema: Schema.Codec<A, I>) =>
          client.get(path).pipe(
            Effect.flatMap(HttpClientResponse.schemaBodyJson(schema)),
            Effect.mapError((error) => new ApiError({ path, reason: error.message }))
          )
        return {
          usersPage: (page) => get(`/users?page=${page}`, UsersPage),
          postsPage: (userId, page) => get(`/users/${userId}/posts?page=${page}`, PostsPage)
        }
      })
    )
}

// -----------------------------------------------------------------------------
// transform

/** What a post says, in numbers: CPU work, done on a worker thread. */
export const analyze = (post: Post): PostRecord => {
  const words = post.body.toLowerCase().split(/\W+/).filter((word) => word.length > 0)
  const counts = new Map<string, number>()
  for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1)
  const topWords = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 5).map(([word]) => word)
  const body = Buffer.from(post.body)
  return new PostRecord({
    id: post.id,
    userId: post.userId,
    title: post.title,
    words: words.length,
    topWords: topWords.join(" "),
    sha256: createHash("sha256").update(body).digest("hex"),
    compressedBytes: deflateSync(body, { level: 9 }).length
  })
}

export const transformPost = Task.make("transformPost", (post: Post) => Effect.sync(() => analyze(post)), {
  module: import.meta.url,
  payload: Post,
  success: PostRecord
})

// -----------------------------------------------------------------------------
// load

/** Where the pipeline loads to. */
export class DatabasePath extends Context.Service<DatabasePath, string>()("examples/etl/DatabasePath") {}

/** One SQLite connection per lane, with its statements prepared once. */
const database = WorkerLocal.make(Effect.gen(function*() {
  const path = yield* DatabasePath
  return yield* Effect.acquireRelease(
    Effect.sync(() => {
      const db = new DatabaseSync(path, { timeout: 10_000 })
      return {
        db,
        upsertUser: db.prepare(
          "INSERT INTO users (id, name, email) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email"
        ),
        upsertPost: db.prepare(
          `INSERT INTO posts (id, user_id, title, words, top_words, sha256, compressed_bytes) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, title = excluded.title, words = excluded.words,
             top_words = excluded.top_words, sha256 = excluded.sha256, compressed_bytes = excluded.compressed_bytes`
        )
      }
    }),
    ({ db }) => Effect.sync(() => db.close())
  )
}))

/** Upserts, so that running the pipeline again changes nothing. */
const loadPosts = (records: ReadonlyArray<PostRecord>) =>
  Effect.flatMap(database, ({ db, upsertPost }) =>
    Effect.sync(() => {
      db.exec("BEGIN")
      for (const r of records) upsertPost.run(r.id, r.userId, r.title, r.words, r.topWords, r.sha256, r.compressedBytes)
      db.exec("COMMIT")
    }))

const loadUser = (user: User) =>
  Effect.flatMap(database, ({ upsertUser }) => Effect.sync(() => upsertUser.run(user.id, user.name, user.email)))

// -----------------------------------------------------------------------------
// the tasks that tie it together

/** Fetches one page of a user's posts, transforms them on worker threads, loads them; returns the page count. */
const postsPage = Effect.fn("postsPage")(function*(userId: number, page: number) {
  const client = yield* BlogClient
  const { pages, posts } = yield* client.postsPage(userId, page)
  const transformed = yield* Task.group(Effect.forEach(posts, (post) => transformPost(post), { discard: true }), {
    results: [transformPost]
  })
  yield* loadPosts(transformed.results(transformPost))
  return pages
})

export const extractPostsPage = Task.make("extractPostsPage", (userId: number, page: number) => postsPage(userId, page))

/** A user, then the first page of their posts; every further page is a task of its own. */
export const extractUser = Task.make("extractUser", (user: User) =>
  Effect.gen(function*() {
    yield* loadUser(user)
    const pages = yield* postsPage(user.id, 1)
    for (let page = 2; page <= pages; page++) yield* extractPostsPage(user.id, page)
  }))

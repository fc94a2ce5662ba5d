/**
 * The demo's data: what the blog API serves, and what the pipeline stores.
 */
import { Schema } from "effect"

export class User extends Schema.Class<User>("User")({
  id: Schema.Int,
  name: Schema.String,
  email: Schema.String
}) {}

export class Post extends Schema.Class<Post>("Post")({
  id: Schema.Int,
  userId: Schema.Int,
  title: Schema.String,
  body: Schema.String
}) {}

/** A page of users; `pages` is the number of pages. */
export const UsersPage = Schema.Struct({ users: Schema.Array(User), page: Schema.Int, pages: Schema.Int })

/** A page of one user's posts. */
export const PostsPage = Schema.Struct({ posts: Schema.Array(Post), page: Schema.Int, pages: Schema.Int })

/** A post after the transform: what the database stores. */
export class PostRecord extends Schema.Class<PostRecord>("PostRecord")({
  id: Schema.Int,
  userId: Schema.Int,
  title: Schema.String,
  words: Schema.Int,
  topWords: Schema.String,
  sha256: Schema.String,
  compressedBytes: Schema.Int
}) {}

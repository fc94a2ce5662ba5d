/**
 * The one worker entry the library ships: every worker thread of every pool
 * runs this file, and imports task modules by URL as their tasks arrive.
 *
 * @internal
 */
import * as NodeWorkerRunner from "@effect/platform-node/NodeWorkerRunner"
import * as Effect from "effect/Effect"
import { serve } from "./workerSide.ts"

Effect.runFork(serve.pipe(Effect.provide(NodeWorkerRunner.layer)))

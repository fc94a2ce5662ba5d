#!/usr/bin/env node
/**
 * The `effect-lateral` command line. `effect-lateral runner --help` tells
 * how to start a runner of a cluster.
 *
 * @since 0.2.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Runtime from "effect/Runtime"
import { Command } from "effect/cli"
import packageJson from "../package.json" with { type: "json" }
import { runner } from "./internal/cluster/cli.ts"

/** A runner ends on SIGTERM or SIGINT, once it has left the cluster: that is a normal end, exit code 0. */
const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

Command.make("effect-lateral").pipe(
  Command.withSubcommands([runner]),
  Command.withDescription("effect-lateral: simple concurrent task processing for Effect programs"),
  Command.run({ version: packageJson.version }),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({ teardown })
)

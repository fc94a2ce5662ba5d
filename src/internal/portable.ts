/**
 * Portable tasks: what lets a task cross to a worker thread.
 *
 * A portable task names the module it lives in and carries Schemas for its
 * payload, success and error. Values cross threads in their Schema-encoded
 * form (structured-cloneable, so binary data stays binary), and processes in
 * their JSON form (`Portable.json`, binary data as base64); an `Exit` crosses
 * as `[0, value]` or `[1, reasons]`, defects as `{ name, message, stack }`.
 * Both threads import the same module, so both hold the same definition.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { PoolTimeoutError, TaskPayloadError, TaskTimeoutError, WorkerCrashError } from "../TaskError.ts"
import type { WireExit, WireReason } from "./wire.ts"

/** The errors of effect-lateral itself, which may end any task. */
const LibraryError = Schema.Union([TaskTimeoutError, PoolTimeoutError, TaskPayloadError, WorkerCrashError])

const defectCodec = Schema.Defect({ includeStack: true })
const encodeDefect = Schema.encodeUnknownSync(defectCodec)
const decodeDefect = Schema.decodeUnknownSync(defectCodec)

export interface PortableOptions {
  readonly module: string
  readonly payload: Schema.Top
  readonly success: Schema.Top
  readonly error?: Schema.Top | undefined
  readonly layer?: Layer.Layer<any, any, never> | undefined
  readonly transfer?: boolean | undefined
}

/**
 * The buffers in an encoded value that can move to another thread instead of
 * being copied: `ArrayBuffer`s, and those that a typed array covers whole (a
 * view into part of a shared buffer, such as Node's pooled `Buffer`s, is
 * copied: moving it would take the rest of the buffer away from its owner).
 */
export const transferablesOf = (value: unknown, found: Array<ArrayBuffer> = [], depth = 0): Array<ArrayBuffer> => {
  if (value instanceof ArrayBuffer) {
    if (!found.includes(value)) found.push(value)
  } else if (ArrayBuffer.isView(value)) {
    const buffer = value.buffer
    if (buffer instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === buffer.byteLength && !found.includes(buffer)) {
      found.push(buffer)
    }
  } else if (depth < 3 && typeof value === "object" && value !== null) {
    for (const item of Array.isArray(value) ? value : Object.values(value)) transferablesOf(item, found, depth + 1)
  }
  return found
}

/**
 * Whether `schema` was made by another copy of effect than this module's.
 * Another copy's schema nodes parse with that copy's own sentinels, which this
 * copy takes for values: an encoded payload would come out as that copy's
 * `Symbol()`, which no thread can receive. A node whose tag names no class of
 * `SchemaAST` here passes: better let one through than refuse a good one.
 */
const madeByAnotherEffect = (schema: Schema.Top): boolean => {
  const Node: unknown = SchemaAST[schema.ast._tag]
  return typeof Node === "function" && !(schema.ast instanceof Node)
}

export class Portable {
  readonly module: string
  readonly layer: Layer.Layer<any, any, never> | undefined
  /** Buffers in payloads and results move between threads instead of being copied. */
  readonly transfer: boolean
  private readonly name: string
  private readonly encodePayloadResult: (input: unknown) => Result.Result<unknown, Schema.SchemaError>
  readonly decodePayload: (encoded: unknown) => unknown
  private readonly encodeSuccess: (value: unknown) => unknown
  private readonly decodeSuccess: (encoded: unknown) => unknown
  private readonly encodeError: (error: unknown) => Result.Result<unknown, Schema.SchemaError>
  private readonly decodeError: (encoded: unknown) => unknown
  private readonly options: PortableOptions
  private jsonForm: Portable | undefined = undefined

  constructor(name: string, options: PortableOptions, form: (schema: Schema.Top) => Schema.Top = (schema) => schema) {
    for (const [role, schema] of [["payload", options.payload], ["success", options.success], ["error", options.error]] as const) {
      if (schema !== undefined && madeByAnotherEffect(schema)) {
        throw new Error(
          `Task "${name}": its ${role} schema comes from another copy of "effect" than effect-lateral's, and values cannot cross ` +
            `threads between two copies. Install a single copy of effect (a peer dependency of effect-lateral): \`npm ls effect\` lists them.`
        )
      }
    }
    this.name = name
    this.module = options.module
    this.layer = options.layer
    this.transfer = options.transfer === true
    this.options = options
    const errors = form(Schema.Union([options.error ?? Schema.Never, LibraryError])) as Schema.Codec<unknown, unknown>
    const payload = form(options.payload) as Schema.Codec<unknown, unknown>
    const success = form(options.success) as Schema.Codec<unknown, unknown>
    this.encodePayloadResult = Schema.encodeUnknownResult(payload)
    this.decodePayload = Schema.decodeUnknownSync(payload)
    this.encodeSuccess = Schema.encodeUnknownSync(success)
    this.decodeSuccess = Schema.decodeUnknownSync(success)
    this.encodeError = Schema.encodeUnknownResult(errors)
    this.decodeError = Schema.decodeUnknownSync(errors)
  }

  /**
   * The same task's codecs for a JSON wire form (`Schema.toCodecJson` of each
   * schema): what a message to another process, or a row of SQL storage, can
   * hold (binary data as base64). Made on first use.
   */
  get json(): Portable {
    return this.jsonForm ??= new Portable(this.name, this.options, Schema.toCodecJson as (schema: Schema.Top) => Schema.Top)
  }

  /** The payload's wire form, or the error a submit fails with. */
  encodePayload(payload: unknown): Result.Result<unknown, TaskPayloadError> {
    return Result.mapError(this.encodePayloadResult(payload), (error) => new TaskPayloadError({ task: this.name, reason: error.message }))
  }

  /**
   * An exit's wire form. A value or error its schema cannot encode becomes a
   * defect that says so, rather than a message that cannot be sent.
   */
  encodeExit(exit: Exit.Exit<unknown, unknown>): WireExit {
    if (exit._tag === "Success") {
      try {
        return [0, this.encodeSuccess(exit.value)]
      } catch (error) {
        return [1, [[1, encodeDefect(this.unencodable(error))]]]
      }
    }
    return [1, exit.cause.reasons.map((reason): WireReason => {
      switch (reason._tag) {
        case "Fail": {
          const encoded = this.encodeError(reason.error)
          return Result.isSuccess(encoded)
            ? [0, encoded.success]
            : [1, encodeDefect(new Error(`Task "${this.name}" failed with an error its error schema cannot encode: ${String(reason.error)}`))]
        }
        case "Die":
          return [1, encodeDefect(reason.defect)]
        case "Interrupt":
          return [2]
      }
    })]
  }

  /**
   * The exit of a run on this thread, checked as a thread would check it: a
   * value its success schema cannot encode is the same defect everywhere.
   */
  checkExit(exit: Exit.Exit<unknown, unknown>): Exit.Exit<unknown, unknown> {
    if (exit._tag === "Failure") return exit
    try {
      this.encodeSuccess(exit.value)
      return exit
    } catch (error) {
      return Exit.die(this.unencodable(error))
    }
  }

  private unencodable(error: unknown): Error {
    return new Error(`Task "${this.name}" returned a value its success schema cannot encode: ${String(error)}`)
  }

  decodeExit(wire: WireExit): Exit.Exit<unknown, unknown> {
    if (wire[0] === 0) return Exit.succeed(this.decodeSuccess(wire[1]))
    return Exit.failCause(Cause.fromReasons(wire[1].map((reason) => {
      switch (reason[0]) {
        case 0:
          return Cause.makeFailReason(this.decodeError(reason[1]))
        case 1:
          return Cause.makeDieReason(decodeDefect(reason[1]))
        case 2:
          return Cause.makeInterruptReason()
      }
    })))
  }
}

/** Encodes what no task's schemas cover: effect-lateral's own errors, and defects. */
export const libraryCodec = new Portable("effect-lateral", { module: "", payload: Schema.Never, success: Schema.Unknown })

/**
 * How a task module is named between machines: by its path relative to a
 * root directory that each side resolves on its own (the project's
 * directory, say), never by the submitter's absolute `file://` URL, which
 * means nothing on another machine.
 *
 * Both sides resolve symbolic links, as Node does for `import.meta.url`, so a
 * module reached through a link has the name of the file it is.
 *
 * @internal
 */
import { realpathSync } from "node:fs"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

export interface ModuleNames {
  /** The name of a task module (its `import.meta.url`) relative to the root, with `/` separators. */
  readonly relative: (moduleUrl: string) => string
  /** The URL of the module named `relative` here: what its `import.meta.url` is once imported. */
  readonly url: (relative: string) => string
}

/**
 * Module names under `root` (a directory; relative paths are taken from the
 * current directory). Throws if the root does not exist.
 *
 * **Example** (Both sides of one task)
 *
 * ```ts
 * // on the submitter, in /home/ci/app:
 * make("/home/ci/app").relative("file:///home/ci/app/dist/tasks.js") // "dist/tasks.js"
 * // on a runner, in /srv/app:
 * make("/srv/app").url("dist/tasks.js") // "file:///srv/app/dist/tasks.js"
 * ```
 */
export const make = (root: string): ModuleNames => {
  const realRoot = realpathSync(Path.resolve(root))
  const relatives = new Map<string, string>()
  const urls = new Map<string, string>()
  return {
    relative: (moduleUrl) => {
      let relative = relatives.get(moduleUrl)
      if (relative !== undefined) return relative
      if (!moduleUrl.startsWith("file:")) {
        throw new Error(`Task module ${moduleUrl} is not a file: a runner can only import files under its root`)
      }
      relative = Path.relative(realRoot, realpathSync(fileURLToPath(moduleUrl))).split(Path.sep).join("/")
      if (relative.startsWith("../") || Path.isAbsolute(relative)) {
        throw new Error(`Task module ${moduleUrl} is outside the cluster's root ${realRoot}, so no runner could find it`)
      }
      relatives.set(moduleUrl, relative)
      return relative
    },
    url: (relative) => {
      let url = urls.get(relative)
      if (url !== undefined) return url
      const path = Path.resolve(realRoot, relative)
      if (!path.startsWith(realRoot + Path.sep)) throw new Error(`Module ${relative} is outside the root ${realRoot}`)
      url = pathToFileURL(realpathSync(path)).href
      urls.set(relative, url)
      return url
    }
  }
}

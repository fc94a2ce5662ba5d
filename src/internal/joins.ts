/**
 * What `TaskPool.join` waits for.
 *
 * Top-level runs count in the epoch they were submitted in; a join seals the
 * current epoch and waits until it, and every epoch sealed before it, has
 * drained, so tasks submitted after a join do not delay it. A run's subtree
 * counts the run and its children whose subtrees have not settled: a run
 * settles once it and all its descendants have finished, and a top-level run
 * that settles counts its epoch down.
 *
 * @internal
 */
import { wakeAll, type Waiters } from "./waiters.ts"

/** A run, as `join` counts it. */
export interface Counted {
  readonly parent: Counted | undefined
  subtree: number
  epoch: Epoch | undefined
  childWaiters: Waiters | undefined
}

/** Top-level runs submitted between two `TaskPool.join` calls. */
export class Epoch {
  count = 0
  readonly waiters: Waiters = []
}

export class Joins {
  private current = new Epoch()
  private readonly sealed: Array<Epoch> = []

  /**
   * The run a new run counts under: its submitter, or, when the submitter's
   * subtree has settled (a fiber that outlived its task submitted it), the
   * nearest ancestor whose subtree has not. None: the run is top-level.
   */
  parentFor<R extends Counted>(submitter: R | undefined): R | undefined {
    let run = submitter
    while (run !== undefined && run.subtree === 0) run = run.parent as R | undefined
    return run
  }

  /**
   * Counts a new run: in its parent's subtree, or, top-level, in an epoch.
   * A run whose submitter's subtree had settled descends from a top-level run
   * that every pending join covers if it was submitted before them: it counts
   * in that run's epoch while a join waits for it, or else in the oldest
   * epoch a join still waits for; otherwise in the current one.
   */
  count(run: Counted, submitter: Counted | undefined): void {
    if (run.parent !== undefined) return void run.parent.subtree++
    let root = submitter
    while (root?.parent !== undefined) root = root.parent
    const rootEpoch = root?.epoch
    const epoch = rootEpoch === undefined || rootEpoch === this.current || this.sealed.includes(rootEpoch)
      ? rootEpoch ?? this.current
      : this.sealed[0] ?? this.current
    run.epoch = epoch
    epoch.count++
  }

  /** A run has finished: its subtree settles if it has no unsettled children, and so on up. */
  settle(run: Counted): void {
    let current = run
    while (--current.subtree === 0) {
      if (current.parent === undefined) {
        if (--current.epoch!.count === 0 && this.sealed.length > 0) this.drain()
        return
      }
      current = current.parent
    }
    if (current.subtree === 1) wakeAll(current.childWaiters)
  }

  /**
   * Seals the current epoch for a join and returns what the join waits for:
   * `drained()` turns true once every run submitted before it has settled.
   */
  seal(): { readonly drained: () => boolean; readonly waiters: Waiters } {
    const epoch = this.current
    // Nothing pending before it at all: nothing to wait for, and no epoch to seal.
    if (epoch.count > 0 || this.sealed.length > 0) {
      this.sealed.push(epoch)
      this.current = new Epoch()
    }
    return { drained: () => !this.sealed.includes(epoch), waiters: epoch.waiters }
  }

  /** Wakes every join (they check the pool's failure). */
  wakeAll(): void {
    for (const epoch of this.sealed) wakeAll(epoch.waiters)
  }

  private drain(): void {
    while (this.sealed.length > 0 && this.sealed[0]!.count === 0) wakeAll(this.sealed.shift()!.waiters)
  }
}

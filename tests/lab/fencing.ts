/**
 * Fencing through the cluster: `stonith_admin --reboot` from a surviving node, executed by the lab's
 * fence agent and host loop (a power cut of the target).
 *
 * @module
 */

import { canonicalNode, exec, holderPid, nodeRunning, requireState } from "./nodes.ts";

/** Options of {@linkcode fenceNode}. */
export interface FenceOptions {
  /** Node that asks for the fencing (default: the first other running node). */
  via?: string;
  /** Deadline in ms (default 60000). */
  timeoutMs?: number;
}

/** What {@linkcode fenceNode} observed. */
export interface FenceResult {
  /** Node that ran stonith_admin. */
  via: string;
  /** Time stonith_admin took, in ms. */
  ms: number;
}

/**
 * Fences a node with `stonith_admin --reboot NODE` run on another node; checks that the target's
 * holder is gone afterwards (the lab's "reboot" leaves the node off until `boot`).
 */
export async function fenceNode(node: string, opts: FenceOptions = {}): Promise<FenceResult> {
  node = canonicalNode(node);
  const via = opts.via ?? requireState().nodes.find((n) => n !== node && nodeRunning(n));
  if (!via) throw new Error(`No other running node can fence ${node}`);
  const holder = holderPid(node);
  const t0 = performance.now();
  const r = await exec(via, ["stonith_admin", "--reboot", node], {
    timeoutMs: opts.timeoutMs ?? 60_000,
  });
  const ms = Math.round(performance.now() - t0);
  if (r.code !== 0) {
    throw new Error(
      `stonith_admin --reboot ${node} failed on ${via} (exit ${r.code}): ${r.stderr.trim()}`,
    );
  }
  if (holder !== null && holderPid(node) !== null) {
    throw new Error(`Fencing of ${node} reported success but its holder still runs`);
  }
  return { via, ms };
}

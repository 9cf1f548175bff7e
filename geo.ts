/**
 * Two sites with a booth ticket (`booth_ticket`): which master a node follows, and what crosses
 * to the other site. Each site is its own Pacemaker cluster; booth grants the ticket to one site
 * at a time, and Pacemaker promotes a node only where the ticket is (`rsc_ticket`, loss-policy
 * demote: a site that loses the ticket demotes its master).
 *
 * - **Active site** (the ticket is granted here): everything works as in one site; the
 *   published master is the cluster property `<rsc>_REPL_INFO`.
 * - **Standby site** (not granted here): its nodes follow the master the active site stored here
 *   as the ticket attribute `<rsc>_REPL_INFO` ({@link standbyMaster}), whether or not their IO
 *   thread runs (after a switchover the old master is alive but no master any more). The
 *   site's own `<rsc>_REPL_INFO` property is stale there, and is deleted (start, demote) so
 *   that it is never taken for a master when the site gets the ticket back.
 * - **Crossing**: the promoted node stores its coordinates at the other site
 *   ({@link shareWithOtherSite}) from its monitor, so never on the failover path: at once when
 *   they change, again every {@link SHARE_REFRESH_MS} (the other site may have restarted and
 *   lost its CIB status, where ticket attributes live), and after a failure no sooner than
 *   {@link SHARE_RETRY_MS} (a cut link must not stretch every monitor). A master demoted because
 *   its site lost the ticket stores its final position there too ({@link afterDemote}): the
 *   other site's promotee waits until it received that far, so a switchover loses nothing.
 *
 * Within the newly active site the election and the resync are the usual ones: its nodes all
 * replicated from the same remote master, so their coordinates compare. The old site's nodes,
 * coming back as standby, resync to the new master or, holding transactions it never received,
 * are kept out (follow.ts), exactly as an old master within one site.
 *
 * @module
 */

import { encodeReplInfo, type ReplInfo } from "./attrs.ts";
import { parseBoothConfig } from "./booth_conf.ts";
import { readOfReplInfo, type ReplInfoRead } from "./cib.ts";
import { executableExists } from "./mysqld.ts";
import type { Problem } from "./params.ts";
import { type Coordinates, decodeCoordinates, encodeCoordinates } from "./position.ts";
import { loadState, type Run, saveState } from "./run.ts";
import { readBoundedFile } from "./safe_fs.ts";
import { BOOTH_CONF_MAX } from "./booth_conf.ts";
import { PCMK_TOOLS_DIR } from "./cib.ts";

/** How often an unchanged `<rsc>_REPL_INFO` is stored at the other site again. */
export const SHARE_REFRESH_MS = 60_000;
/** How long after a failed store the promoted monitor tries again. */
export const SHARE_RETRY_MS = 10_000;

/** Where this node's site stands with the ticket. */
export type SiteRole = "single" | "active" | "standby" | "unknown";

/** The role of this node's site (one read of the ticket per action). */
export async function siteRole(run: Run): Promise<SiteRole> {
  if (run.booth === undefined) return "single";
  const t = await run.booth.ticketState();
  if (t.state === "unknown") return "unknown";
  return t.granted ? "active" : "standby";
}

/**
 * The published master as this node's site sees it: the cluster property in one site or the
 * active site; the ticket attribute at a standby site; unreachable when the ticket cannot be read.
 */
export async function readPublished(run: Run): Promise<ReplInfoRead> {
  if (run.booth === undefined) return await run.cib.readReplInfo();
  const t = await run.booth.ticketState();
  if (t.state === "unknown") return { state: "unreachable" };
  if (t.granted) return await run.cib.readReplInfo();
  return standbyMaster(run, t.attributes);
}

/** A standby site's master: the ticket attribute `<rsc>_REPL_INFO` the active site stored. */
export function standbyMaster(run: Run, attributes: Map<string, string>): ReplInfoRead {
  return readOfReplInfo(attributes.get(run.names.replInfo));
}

/**
 * The final position the other site's demoted master `host` stored here (a switchover between
 * sites), if any.
 */
export async function remoteFinal(run: Run, host: string): Promise<Coordinates | undefined> {
  if (run.booth === undefined) return undefined;
  const t = await run.booth.ticketState();
  if (t.state !== "known") return undefined;
  const raw = t.attributes.get(run.names.final);
  const final = raw === undefined ? undefined : decodeCoordinates(raw);
  return final?.host === host ? final : undefined;
}

/** True when a store of `value` at the other site is due (see the module comment). */
export function shareDue(
  last: { value: string; ok: boolean; at: number } | undefined,
  value: string,
  now: number,
): boolean {
  if (last === undefined || last.value !== value) return true;
  return now - last.at >= (last.ok ? SHARE_REFRESH_MS : SHARE_RETRY_MS);
}

/**
 * Promoted monitor: stores this master's coordinates at the other site when due. Only while
 * this site holds the ticket: a master that lost it is about to be demoted.
 */
export async function shareWithOtherSite(run: Run, info: ReplInfo): Promise<void> {
  if (run.booth === undefined) return;
  const value = encodeReplInfo(info);
  const state = loadState(run);
  const now = Date.now();
  // Checked first: most monitors have nothing to do, and then cost no tool call at all.
  if (!shareDue(state.sharedWithOtherSite, value, now)) return;
  const ticket = await run.booth.ticketState();
  if (ticket.state !== "known" || !ticket.granted) {
    if (ticket.state === "known") {
      run.log.warn(`Promoted without booth ticket ${run.booth.ticket}: Pacemaker demotes`);
    }
    return;
  }
  // What the other site stored here while it was active (its master, its final position) is
  // stale now that this site is: never to be followed if this site loses the ticket again.
  for (const name of [run.names.replInfo, run.names.final]) {
    if (ticket.attributes.has(name)) await run.booth.forgetHere(name);
  }
  const ok = await run.booth.storeAtOtherSite(run.names.replInfo, value);
  state.sharedWithOtherSite = { value, ok, at: now };
  saveState(run, state);
}

/**
 * demote: when this site no longer holds the ticket (revoked for a switchover, or expired),
 * store where this node stopped writing at the other site, and delete the site's own
 * `<rsc>_REPL_INFO` (stale from now on). A demote within the active site changes nothing here.
 */
export async function afterDemote(run: Run, final: Coordinates | undefined): Promise<void> {
  if ((await siteRole(run)) !== "standby") return;
  const state = loadState(run);
  delete state.sharedWithOtherSite;
  saveState(run, state);
  await Promise.all([
    final === undefined
      ? Promise.resolve(false)
      : run.booth!.storeAtOtherSite(run.names.final, encodeCoordinates(final)),
    run.cib.clearReplInfo(),
  ]);
}

/** start at a standby site: the site's own `<rsc>_REPL_INFO` names no master any more. */
export async function forgetStaleMaster(run: Run): Promise<void> {
  if ((await siteRole(run)) !== "standby") return;
  const local = await run.cib.readReplInfo();
  if (local.state === "set" || local.state === "malformed") await run.cib.clearReplInfo();
}

/** validate-all with a booth ticket: the tools, and a booth configuration naming the ticket. */
export function boothProblems(run: Run): Problem[] {
  if (run.params.boothTicket === "") return [];
  const problems: Problem[] = [];
  for (const tool of ["crm_ticket", "geostore"]) {
    if (!executableExists(`${PCMK_TOOLS_DIR}/${tool}`)) {
      problems.push({
        kind: "installed",
        message: `${PCMK_TOOLS_DIR}/${tool} is missing (booth_ticket needs the booth package)`,
      });
    }
  }
  const read = readBoundedFile(run.params.boothConfig, BOOTH_CONF_MAX);
  if (!read.ok) {
    problems.push({
      kind: "installed",
      message: `Booth configuration ${run.params.boothConfig} is not readable (${read.why})`,
    });
    return problems;
  }
  const parsed = parseBoothConfig(read.text);
  if ("error" in parsed) {
    problems.push({ kind: "configured", message: `${run.params.boothConfig}: ${parsed.error}` });
    return problems;
  }
  const { config } = parsed;
  if (!config.tickets.some((t) => t.name === run.params.boothTicket)) {
    problems.push({
      kind: "configured",
      message: `${run.params.boothConfig} has no ticket ${run.params.boothTicket}`,
    });
  }
  if (config.sites.length !== 2) {
    problems.push({
      kind: "configured",
      message: `${run.params.boothConfig} names ${config.sites.length} sites: booth_ticket ` +
        "needs exactly two (the other site is where the coordinates go)",
    });
  }
  return problems;
}

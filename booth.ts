/**
 * The only place that runs booth's tools and `crm_ticket`: what this site knows of the booth
 * ticket (granted here or not, and the ticket attributes the other site stored here), and
 * storing a ticket attribute at the other site (`geostore -s other`, which booth carries to that
 * site's boothd, which writes it into that site's CIB with crm_ticket).
 *
 * Why push, not pull: a node reads its own site's CIB (`crm_ticket -q`, a local call like any
 * crm_attribute), never the WAN, so a cut link costs a standby monitor nothing. Only the active
 * site's promoted node crosses the WAN, off the failover path, bounded by
 * {@link GEOSTORE_MAX_MS} and retried later when the other site is out of reach.
 *
 * Every answer is untrusted input: bounded in size, the ticket state parsed from its one XML
 * element, attribute values decoded by their owners (attrs.ts). Never throws: outside a
 * two-site cluster the tools fail, and the agent copes. Tools run through cib.ts's runner
 * (child.ts: minimal environment, killed at their deadline).
 *
 * @module
 */

import type { Budget } from "./budget.ts";
import { runTool, TOOL_MAX_MS, type ToolRunner } from "./cib.ts";
import { isTicketName } from "./booth_conf.ts";
import type { Logger } from "./ocf.ts";

/**
 * The longest one geostore call may take: it opens a TCP connection to the other site's boothd
 * across the WAN (a few round trips, 40-100 ms in the lab at 20 ms each way), which then runs
 * crm_ticket there. One that has not answered in 4 s is facing a cut link; the caller retries
 * at a later monitor.
 */
export const GEOSTORE_MAX_MS = 4_000;

/** The most a ticket attribute value may hold (boothd's own limit is 128 bytes). */
export const TICKET_VALUE_MAX = 128;

/** The most crm_ticket's answer may hold (one ticket's state is a few hundred bytes). */
const TICKET_OUTPUT_MAX = 16 * 1024;

/** What this site's CIB says of the ticket. */
export type TicketRead =
  | {
    state: "known";
    /** Granted to this site and not in standby: this site may run the promoted role. */
    granted: boolean;
    /** Every other attribute of the ticket's state (the ones other sites stored here). */
    attributes: Map<string, string>;
  }
  | { state: "unknown"; why: string };

const XML_ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
};

function xmlUnescape(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => XML_ENTITIES[e]);
}

/** Attributes of the ticket state that Pacemaker and booth keep, never an application's. */
const TICKET_OWN = new Set([
  "id",
  "granted",
  "standby",
  "last-granted",
  "owner",
  "expires",
  "term",
  "booth-cfg-name",
]);

/**
 * Parses `crm_ticket -t TICKET -q` output: the `<ticket_state id="TICKET" .../>` element. A
 * missing element means the ticket was never granted here. Values longer than
 * {@link TICKET_VALUE_MAX} are dropped.
 *
 * @example
 * ```ts
 * const t = parseTicketState(
 *   '<ticket_state id="tk" granted="false" p_mysql_REPL_INFO="prm3|mysql-bin.000002|344"/>',
 *   "tk",
 * );
 * // { granted: false, attributes: Map { "p_mysql_REPL_INFO" => "prm3|mysql-bin.000002|344" } }
 * ```
 */
export function parseTicketState(
  text: string,
  ticket: string,
): { granted: boolean; attributes: Map<string, string> } {
  const attributes = new Map<string, string>();
  const element = /<ticket_state\s([^>]{0,8192}?)\/?>/.exec(text.slice(0, TICKET_OUTPUT_MAX));
  if (element === null) return { granted: false, attributes };
  const own = new Map<string, string>();
  for (const m of element[1].matchAll(/([A-Za-z_][A-Za-z0-9_.:-]{0,127})="([^"]*)"/g)) {
    const value = xmlUnescape(m[2]);
    if (TICKET_OWN.has(m[1])) own.set(m[1], value);
    else if (value.length <= TICKET_VALUE_MAX) attributes.set(m[1], value);
  }
  if (own.get("id") !== ticket) return { granted: false, attributes: new Map() };
  return { granted: own.get("granted") === "true" && own.get("standby") !== "true", attributes };
}

/** Options of {@link Booth}. */
export interface BoothOptions {
  /** The booth configuration file. */
  config: string;
  /** Logger for failures. */
  log: Logger;
  /** The action's budget: no call runs past it. */
  budget: Budget;
  /** Tool runner (tests pass a fake). */
  runner?: ToolRunner;
}

/** Booth access for one ticket. */
export class Booth {
  /** The ticket. */
  readonly ticket: string;
  #config: string;
  #log: Logger;
  #budget: Budget;
  #run: ToolRunner;
  #state?: Promise<TicketRead>;

  /** Creates the accessor for `ticket` (validated by the caller: params.ts). */
  constructor(ticket: string, options: BoothOptions) {
    if (!isTicketName(ticket)) throw new Error(`Invalid booth ticket name ${ticket}`);
    this.ticket = ticket;
    this.#config = options.config;
    this.#log = options.log;
    this.#budget = options.budget;
    this.#run = options.runner ?? runTool;
  }

  /**
   * The ticket as this site's CIB holds it, read once per action (an action's decisions all
   * rest on the same answer).
   */
  ticketState(): Promise<TicketRead> {
    this.#state ??= this.#readState();
    return this.#state;
  }

  /** Forgets the answer read so far (after a wait, for a fresh one). */
  refresh(): void {
    this.#state = undefined;
  }

  async #readState(): Promise<TicketRead> {
    const timeoutMs = this.#budget.cap(TOOL_MAX_MS);
    if (timeoutMs <= 0) return { state: "unknown", why: "the action's time is up" };
    const r = await this.#run("crm_ticket", ["-t", this.ticket, "-q"], timeoutMs);
    // 105 (no such device or address): no state for the ticket, never granted at this site.
    if (r.code === 105) return { state: "known", granted: false, attributes: new Map() };
    if (r.code !== 0) {
      const why = `crm_ticket -t ${this.ticket} -q: ${r.stderr.slice(0, 300) || `exit ${r.code}`}`;
      this.#log.warn(`Cannot read the booth ticket: ${why}`);
      return { state: "unknown", why };
    }
    return { state: "known", ...parseTicketState(r.stdout, this.ticket) };
  }

  /**
   * Deletes a ticket attribute from this site's CIB (crm_ticket -D): what the other site stored
   * here while it was active means nothing once this site is. True when it is gone.
   */
  async forgetHere(name: string): Promise<boolean> {
    const timeoutMs = this.#budget.cap(TOOL_MAX_MS);
    if (timeoutMs <= 0) return false;
    const r = await this.#run("crm_ticket", ["-t", this.ticket, "-D", name], timeoutMs);
    if (r.code === 0) this.#log.info(`Deleted the stale ticket attribute ${name} at this site`);
    else {this.#log.warn(
        `Deleting ticket attribute ${name} failed (${r.stderr || `exit ${r.code}`})`,
      );}
    return r.code === 0;
  }

  /**
   * Stores (or, with undefined, deletes) a ticket attribute at the other site. True once that
   * site's boothd confirmed it; false (logged) when it is out of reach or refused.
   */
  async storeAtOtherSite(name: string, value: string | undefined): Promise<boolean> {
    if (value !== undefined && (value.length > TICKET_VALUE_MAX || /[\s'"\\]/.test(value))) {
      this.#log.warn(`Not storing ${name} at the other site: value not storable`);
      return false;
    }
    const timeoutMs = this.#budget.cap(GEOSTORE_MAX_MS);
    if (timeoutMs <= 0) return false;
    const args = ["-c", this.#config, "-t", this.ticket, "-s", "other"];
    const r = await this.#run(
      "geostore",
      value === undefined ? ["delete", ...args, name] : ["set", ...args, name, value],
      timeoutMs,
    );
    const what = value === undefined ? `Deleting ${name}` : `Storing ${name}=${value}`;
    if (r.code === 0) {
      this.#log.info(`${what} at the other site (booth ticket ${this.ticket})`);
      return true;
    }
    this.#log.warn(
      `${what} at the other site failed (${
        r.stderr.split("\n").slice(-2).join(" | ").slice(0, 300) || `exit ${r.code}`
      }): retrying later`,
    );
    return false;
  }
}

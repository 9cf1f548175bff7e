/**
 * The booth configuration (`/etc/booth/booth.conf`), pure: its model, the one renderer
 * `mysql_prm config` and the lab use, and a parser for what the agent checks in validate-all
 * (the ticket exists, the sites are two). Booth's own rules, as boothd(8) states them and this
 * module enforces:
 *
 * - at least three members (sites plus arbitrators), an odd number recommended;
 * - a ticket's renewal (half its expiry unless `renewal-freq` says otherwise) must outlast every
 *   retry of a packet: `timeout * (retries + 1) < renewal`, and `retries` is at least 3;
 * - names and addresses end up as words of a file boothd parses with `key = value` lines, so they
 *   are limited to what that syntax cannot misread.
 *
 * @module
 */

import { ipFamily } from "./position.ts";

/** Booth's default UDP/TCP port. */
export const BOOTH_PORT = 9929;

/** A ticket name booth and crm_ticket accept, and that is safe as a word of a command. */
const TICKET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** The most a booth configuration file may hold (a real one is well under 4 KiB). */
export const BOOTH_CONF_MAX = 64 * 1024;

/** One ticket and its timing (seconds). */
export interface BoothTicket {
  /** Ticket name, e.g. `ticket-mysql`. */
  name: string;
  /** Lease time: after it, another site may acquire the ticket of an unreachable holder. */
  expire: number;
  /** Extra wait after a loss before acquiring, so the losing site can demote (or fence). */
  acquireAfter: number;
  /** Resend interval of booth packets. */
  timeout: number;
  /** Resends before giving up on acknowledgements (at least 3). */
  retries: number;
  /** Renewal interval; undefined: half of `expire`. */
  renewalFreq?: number;
}

/** A booth configuration: the members and the tickets. */
export interface BoothConfig {
  /** Booth port (default {@link BOOTH_PORT}). */
  port: number;
  /** Addresses of the sites, one per cluster (a floating IP the cluster manages). */
  sites: string[];
  /** Addresses of the arbitrators (no Pacemaker, only boothd). */
  arbitrators: string[];
  /** Shared key file for HMAC authentication (mode 0600 on every member), or undefined. */
  authfile?: string;
  /** The tickets. */
  tickets: BoothTicket[];
}

/** True when `name` is a valid ticket name. */
export function isTicketName(name: unknown): name is string {
  return typeof name === "string" && TICKET_NAME.test(name);
}

/** The renewal interval booth uses for a ticket. */
export function renewalOf(t: BoothTicket): number {
  return t.renewalFreq ?? t.expire / 2;
}

/** Every rule of the module comment a configuration breaks (empty when it is sound). */
export function boothConfigProblems(c: BoothConfig): string[] {
  const problems: string[] = [];
  const members = [...c.sites, ...c.arbitrators];
  if (members.length < 3) {
    problems.push(
      `booth needs at least three members (sites and arbitrators), not ${members.length}`,
    );
  }
  for (const m of members) {
    if (ipFamily(m) === 0) problems.push(`booth member ${JSON.stringify(m)} is not an IP address`);
  }
  if (new Set(members).size !== members.length) problems.push("booth members must differ");
  if (!Number.isInteger(c.port) || c.port < 1 || c.port > 65535) {
    problems.push(`booth port must be 1-65535, not ${c.port}`);
  }
  if (c.authfile !== undefined && !/^\/[A-Za-z0-9_./-]{1,250}$/.test(c.authfile)) {
    problems.push(`booth authfile must be an absolute path, not ${JSON.stringify(c.authfile)}`);
  }
  if (c.tickets.length === 0) problems.push("booth needs a ticket");
  for (const t of c.tickets) {
    if (!isTicketName(t.name)) {
      problems.push(`booth ticket name ${JSON.stringify(t.name)} is invalid`);
    }
    if (t.retries < 3) problems.push(`ticket ${t.name}: retries must be at least 3`);
    if (!(t.timeout > 0) || !(t.expire > 0) || t.acquireAfter < 0) {
      problems.push(
        `ticket ${t.name}: timeout and expire must be positive, acquire-after not negative`,
      );
    } else if (t.timeout * (t.retries + 1) >= renewalOf(t)) {
      problems.push(
        `ticket ${t.name}: timeout * (retries + 1) = ${
          t.timeout * (t.retries + 1)
        } s must be shorter than the renewal (${renewalOf(t)} s)`,
      );
    }
  }
  return problems;
}

/**
 * The text of booth.conf, with comments saying what each ticket setting costs in a failover.
 *
 * @example
 * ```ts
 * const text = renderBoothConfig({
 *   port: 9929,
 *   sites: ["10.0.1.90", "10.0.2.90"],
 *   arbitrators: ["10.0.3.15"],
 *   tickets: [{ name: "ticket-mysql", expire: 30, acquireAfter: 5, timeout: 2, retries: 3 }],
 * });
 * console.assert(text.includes('ticket = "ticket-mysql"'));
 * ```
 */
export function renderBoothConfig(c: BoothConfig): string {
  const problems = boothConfigProblems(c);
  if (problems.length > 0) throw new Error(`Invalid booth configuration: ${problems.join("; ")}`);
  const lines = [
    "# booth.conf: identical on every node of both sites and on the arbitrator",
    'transport = "UDP"',
    `port = ${c.port}`,
  ];
  if (c.authfile !== undefined) {
    lines.push(
      "# HMAC key shared by every member (booth-keygen; mode 0600, copied by a secure channel)",
      `authfile = ${c.authfile}`,
    );
  }
  for (const s of c.sites) lines.push(`site = ${s}`);
  for (const a of c.arbitrators) lines.push(`arbitrator = ${a}`);
  for (const t of c.tickets) {
    lines.push(
      "",
      `# A site that loses contact keeps ${t.name} for at most expire s, then demotes; the other`,
      `# site acquires it after expire + acquire-after s (${t.expire + t.acquireAfter} s).`,
      `ticket = "${t.name}"`,
      `    expire = ${t.expire}`,
      `    acquire-after = ${t.acquireAfter}`,
      `    timeout = ${t.timeout}`,
      `    retries = ${t.retries}`,
    );
    if (t.renewalFreq !== undefined) lines.push(`    renewal-freq = ${t.renewalFreq}`);
  }
  return lines.join("\n") + "\n";
}

/**
 * Parses booth.conf (untrusted: at most {@link BOOTH_CONF_MAX} bytes), keeping what the agent and
 * the tests need; unknown keys are skipped. Answers what is wrong instead of throwing.
 */
export function parseBoothConfig(text: string): { config: BoothConfig } | { error: string } {
  if (text.length > BOOTH_CONF_MAX) return { error: "booth configuration is too large" };
  const config: BoothConfig = { port: BOOTH_PORT, sites: [], arbitrators: [], tickets: [] };
  let ticket: BoothTicket | undefined;
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") continue;
    const m = /^([A-Za-z-]+)\s*=\s*(?:"([^"]*)"|(\S+))$/.exec(line);
    if (!m) return { error: `booth configuration line ${i + 1} is not key = value` };
    const key = m[1].toLowerCase();
    const value = m[2] ?? m[3];
    const num = Number(value);
    switch (key) {
      case "site":
        config.sites.push(value);
        break;
      case "arbitrator":
        config.arbitrators.push(value);
        break;
      case "port":
        config.port = num;
        break;
      case "authfile":
        config.authfile = value;
        break;
      case "ticket":
        ticket = { name: value, expire: 600, acquireAfter: 0, timeout: 5, retries: 10 };
        config.tickets.push(ticket);
        break;
      case "expire":
      case "acquire-after":
      case "timeout":
      case "retries":
      case "renewal-freq": {
        if (!Number.isFinite(num)) {
          return { error: `booth configuration line ${i + 1}: ${key} is not a number` };
        }
        // Before the first ticket these are the defaults of every ticket: not needed here.
        if (ticket === undefined) break;
        if (key === "expire") ticket.expire = num;
        else if (key === "acquire-after") ticket.acquireAfter = num;
        else if (key === "timeout") ticket.timeout = num;
        else if (key === "retries") ticket.retries = num;
        else ticket.renewalFreq = num;
        break;
      }
      default:
        break;
    }
  }
  return { config };
}

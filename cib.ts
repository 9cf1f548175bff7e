/**
 * The only place that runs Pacemaker's tools: promotion scores (crm_attribute --promotion), node
 * attributes, private attributes (attrd_updater -p), the `<rsc>_REPL_INFO` cluster property and
 * the node name. Names and value codecs come from attrs.ts. Writes only when a value changes;
 * every value read back is validated, since a CIB value is untrusted input. Never throws: outside
 * a cluster the tools fail, and the agent copes.
 *
 * Time: every call gets at most {@link TOOL_MAX_MS}, and never more than the action's budget has
 * left (child.ts kills a tool at its deadline, SIGKILL after a short grace). A tool that did not
 * answer in time marks Pacemaker unreachable for the rest of the action, so later calls return at
 * once instead of each waiting again: measured before this rule, a hung crm_attribute stretched a
 * 30 s monitor to 75 s. A write that failed is logged as failed, never as done.
 *
 * @module
 */

import type { Logger } from "./ocf.ts";
import {
  type AttributeNames,
  attributeNames,
  decodeReplInfo,
  encodeReplInfo,
  REPL_INFO_SET,
  type ReplInfo,
} from "./attrs.ts";
import { Budget } from "./budget.ts";
import { type Unmanaged, unmanagedReason } from "./cluster_view.ts";
import { parseXml } from "./pcmk_xml.ts";
import { NOT_FOUND, runChild, TIMED_OUT } from "./child.ts";
import { isValidHost } from "./position.ts";
import { readBoundedFile, replaceFile } from "./safe_fs.ts";

/** Result of running a tool. */
export interface ToolResult {
  /** Exit code (127 when the tool is missing, 124 when it did not answer in time). */
  code: number;
  /** Standard output, trimmed. */
  stdout: string;
  /** Standard error, trimmed. */
  stderr: string;
}

/** Runs a tool within `timeoutMs`; replaceable in tests. */
export type ToolRunner = (cmd: string, args: string[], timeoutMs: number) => Promise<ToolResult>;

/**
 * Where Pacemaker's tools are: /usr/sbin, or PRM_PCMK_TOOLS_DIR (tests point it at fakes that
 * keep attributes in files, to drive the agent's cluster paths without a cluster).
 */
export const PCMK_TOOLS_DIR: string = toolsDir();

/**
 * The longest one tool call may take, even with more budget left: a healthy call answers in
 * 20-60 ms (lab: crm_attribute 43 ms on average); one that has not answered in 15 s is hung
 * (pacemaker-based or -attrd stuck), and waiting longer only eats the action's time.
 */
export const TOOL_MAX_MS = 15_000;

/** The most a tool's answer may hold (`attrd_updater -A` of a 32-node cluster is ~4 KiB). */
const TOOL_OUTPUT_MAX = 256 * 1024;

/** The most the write cache file may hold. */
const CACHE_MAX = 64 * 1024;

function toolsDir(): string {
  try {
    return Deno.env.get("PRM_PCMK_TOOLS_DIR") || "/usr/sbin";
  } catch {
    // No env permission (a library user): the real tools.
    return "/usr/sbin";
  }
}

/**
 * Runs a Pacemaker tool from {@link PCMK_TOOLS_DIR} (child.ts: minimal environment, SIGTERM then
 * SIGKILL at the deadline, code 124 when it did not answer in time).
 */
export async function runTool(cmd: string, args: string[], timeoutMs: number): Promise<ToolResult> {
  const path = cmd.startsWith("/") ? cmd : `${PCMK_TOOLS_DIR}/${cmd}`;
  // The minimal environment matters here beyond secrets: with OCF_RESKEY_CRM_meta_on_node set
  // (as Pacemaker sets it for agents), attrd_updater -Q -A answers for that node only.
  const r = await runChild([path, ...args], {
    budget: Budget.ofMs(timeoutMs),
    maxOutputBytes: TOOL_OUTPUT_MAX,
  });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** Parses `attrd_updater -Q -A` output into node → value. */
export function parseAttrdQuery(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /name="[^"]*"\s+host="([^"]*)"\s+value="([^"]{0,4096})"/.exec(line);
    // A deleted private attribute reads back as an empty value: treat it as absent.
    if (m && isValidHost(m[1]) && m[2] !== "") out.set(m[1], m[2]);
  }
  return out;
}

/** `<rsc>_REPL_INFO` as read: the validated value, or what was wrong with it. */
export type ReplInfoRead =
  | { state: "set"; info: ReplInfo }
  | { state: "unset" }
  | { state: "malformed"; raw: string }
  | { state: "unreachable" };

/**
 * A `<rsc>_REPL_INFO` value as read from wherever it is kept (the cluster property, or a booth
 * ticket attribute): undefined or empty is unset; anything that does not decode is malformed.
 */
export function readOfReplInfo(raw: string | undefined): ReplInfoRead {
  if (raw === undefined || raw === "") return { state: "unset" };
  const info = decodeReplInfo(raw);
  return info === undefined
    ? { state: "malformed", raw: raw.slice(0, 300) }
    : { state: "set", info };
}

/** Options for {@link Cib}. */
export interface CibOptions {
  /** Logger for failures. */
  log: Logger;
  /** The action's budget: no tool call runs past it. Default: 60 s from now. */
  budget?: Budget;
  /** The reader attribute's name (`reader_attribute`). */
  readerAttribute?: string;
  /** Tool runner (tests pass a fake). */
  runner?: ToolRunner;
  /** JSON file caching values this node wrote, to skip reads when unchanged. */
  cacheFile?: string;
  /** Ignore the cache (probes: the CIB may have been wiped). */
  refresh?: boolean;
}

/** Pacemaker access for one resource. */
export class Cib {
  /** Every name this resource uses (attrs.ts). */
  readonly names: AttributeNames;
  #log: Logger;
  #budget: Budget;
  #run: ToolRunner;
  #cacheFile?: string;
  #cache: Record<string, string> = {};
  #refresh: boolean;
  #dirty = false;
  /** Set once a tool failed because no cluster is reachable, or hung (logged once). */
  unavailable = false;

  /** Creates the accessor for resource `rsc` (no clone suffix). */
  constructor(rsc: string, options: CibOptions) {
    this.names = attributeNames(rsc, options.readerAttribute);
    this.#log = options.log;
    this.#budget = options.budget ?? Budget.ofMs(60_000);
    this.#run = options.runner ?? runTool;
    this.#cacheFile = options.cacheFile;
    this.#refresh = options.refresh ?? false;
    if (this.#cacheFile !== undefined && !this.#refresh) {
      const read = readBoundedFile(this.#cacheFile, CACHE_MAX, { noFollow: true });
      try {
        const parsed = read.ok ? JSON.parse(read.text) : undefined;
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
          for (const [k, v] of Object.entries(parsed)) {
            if (typeof v === "string") this.#cache[k] = v;
          }
        }
      } catch {
        // A damaged cache is no cache.
      }
    }
  }

  async #tool(cmd: string, args: string[]): Promise<ToolResult> {
    if (this.unavailable) {
      return { code: NOT_FOUND, stdout: "", stderr: "Pacemaker unreachable in this action" };
    }
    const timeoutMs = this.#budget.cap(TOOL_MAX_MS);
    const r = timeoutMs > 0
      ? await this.#run(cmd, args, timeoutMs)
      : { code: TIMED_OUT, stdout: "", stderr: `${cmd}: the action's time is up` };
    if (
      r.code === NOT_FOUND || r.code === TIMED_OUT ||
      /connect|not connected|Transport endpoint/i.test(r.stderr)
    ) {
      if (!this.unavailable) {
        this.#log.warn(
          `Pacemaker not reachable (${cmd}: ${r.stderr || `exit ${r.code}`}); going on without`,
        );
      }
      this.unavailable = true;
    } else if (r.code !== 0 && r.code !== 105 && r.code !== 6) {
      this.#log.debug(`${cmd} ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    }
    return r;
  }

  /** Persists the write cache (in the agent's own state folder, replaced atomically). */
  save(): void {
    if (this.#cacheFile === undefined || !this.#dirty) return;
    try {
      replaceFile(this.#cacheFile, JSON.stringify(this.#cache));
      this.#dirty = false;
    } catch (err) {
      this.#log.debug(`Cannot write ${this.#cacheFile}: ${(err as Error).message}`);
    }
  }

  #cached(key: string): string | undefined {
    return this.#refresh ? undefined : this.#cache[key];
  }

  #remember(key: string, value: string | undefined): void {
    if (value === undefined) delete this.#cache[key];
    else this.#cache[key] = value;
    this.#dirty = true;
  }

  /** This node's name (crm_node -n), or undefined outside a cluster. */
  async nodeName(): Promise<string | undefined> {
    const r = await this.#tool("crm_node", ["-n"]);
    return r.code === 0 && isValidHost(r.stdout) ? r.stdout : undefined;
  }

  /** Nodes of this partition (crm_node -p). */
  async partitionNodes(): Promise<string[]> {
    const r = await this.#tool("crm_node", ["-p"]);
    if (r.code !== 0) return [];
    return r.stdout.split(/\s+/).filter(isValidHost);
  }

  /** Reads a promotion score (this node unless `node`), undefined when unset or invalid. */
  async promotionScore(node?: string): Promise<number | undefined> {
    const args = [`--promotion=${this.names.resource}`, "-G", "-q", ...onNode(node)];
    const r = await this.#tool("crm_attribute", args);
    if (r.code !== 0) return undefined;
    return /^-?\d{1,7}$/.test(r.stdout) ? Number(r.stdout) : undefined;
  }

  /**
   * Sets the promotion score (undefined deletes it: the node is then never promoted). Writes only
   * when it differs from what this node last wrote (or read, on a refresh).
   */
  async setPromotionScore(score: number | undefined, node?: string): Promise<boolean> {
    const key = `score:${node ?? ""}`;
    const want = score === undefined ? undefined : String(score);
    if (!this.#refresh && key in this.#cache && this.#cache[key] === (want ?? "")) return false;
    // A known different last write means a write is due: skip the read (one tool call less on
    // the failover path). Unknown (first call, probe) reads first to avoid a needless write.
    const known = this.#refresh || !(key in this.#cache) ? undefined : this.#cache[key];
    const current = known !== undefined
      ? (known === "" ? undefined : Number(known))
      : await this.promotionScore(node);
    if (this.unavailable) return false;
    if ((current === undefined ? undefined : String(current)) === want) {
      this.#remember(key, want ?? "");
      return false;
    }
    const promotion = `--promotion=${this.names.resource}`;
    const args = want === undefined
      ? [promotion, "-D", ...onNode(node)]
      : [promotion, "-v", want, ...onNode(node)];
    const r = await this.#tool("crm_attribute", args);
    const what = `Promotion score ${node ?? "(this node)"}: ${current ?? "none"} -> ${
      want ?? "none"
    }`;
    if (r.code === 0) {
      this.#remember(key, want ?? "");
      this.#log.info(what);
    } else this.#log.warn(`${what} failed (${r.stderr || `exit ${r.code}`})`);
    return r.code === 0;
  }

  /** Reads a transient node attribute (this node unless `node`). */
  async nodeAttribute(name: string, node?: string): Promise<string | undefined> {
    const args = ["-n", name, "-l", "reboot", "-G", "-q", ...onNode(node)];
    const r = await this.#tool("crm_attribute", args);
    return r.code === 0 ? r.stdout : undefined;
  }

  /** Sets (or deletes, with undefined) a transient node attribute when it changes. */
  async setNodeAttribute(name: string, value: string | undefined): Promise<boolean> {
    const key = `attr:${name}`;
    if (this.#cached(key) === (value ?? "") && key in this.#cache) return false;
    // As for scores: a known different last write skips the read.
    const known = this.#cached(key);
    const current = known !== undefined
      ? (known === "" ? undefined : known)
      : await this.nodeAttribute(name);
    if (this.unavailable) return false;
    if (current === value) {
      this.#remember(key, value ?? "");
      return false;
    }
    const args = value === undefined
      ? ["-n", name, "-l", "reboot", "-D"]
      : ["-n", name, "-l", "reboot", "-v", value];
    const r = await this.#tool("crm_attribute", args);
    const what = `Node attribute ${name}: ${current ?? "none"} -> ${value ?? "none"}`;
    if (r.code === 0) {
      this.#remember(key, value ?? "");
      this.#log.info(what);
    } else this.#log.warn(`${what} failed (${r.stderr || `exit ${r.code}`})`);
    return r.code === 0;
  }

  /** Sets a private attribute (attrd only, never in the CIB) on this node; undefined deletes. */
  async setPrivate(name: string, value: string | undefined, node?: string): Promise<boolean> {
    const args = value === undefined ? ["-p", "-n", name, "-D"] : ["-p", "-n", name, "-U", value];
    args.push(...onNode(node));
    const r = await this.#tool("attrd_updater", args);
    return r.code === 0;
  }

  /** Reads a private attribute on every node: node → value. */
  async privateAll(name: string): Promise<Map<string, string>> {
    const r = await this.#tool("attrd_updater", ["-p", "-n", name, "-Q", "-A"]);
    if (r.code !== 0) return new Map();
    return parseAttrdQuery(r.stdout);
  }

  /**
   * Reads a transient node attribute on every node (`attrd_updater -Q -A`, one call: the
   * attribute manager holds the reboot-lifetime attributes crm_attribute sets): node → value.
   */
  async nodeAttributeAll(name: string): Promise<Map<string, string>> {
    const r = await this.#tool("attrd_updater", ["-n", name, "-Q", "-A"]);
    if (r.code !== 0) return new Map();
    return parseAttrdQuery(r.stdout);
  }

  /**
   * Clears this resource's failures and operation history on `node` (crm_resource --cleanup):
   * Pacemaker probes it again and lifts what the failures caused (a migration-threshold ban).
   */
  async cleanupFailures(node: string): Promise<boolean> {
    const r = await this.#tool("crm_resource", [
      "--cleanup",
      "-r",
      this.names.resource,
      ...onNode(node),
    ]);
    return r.code === 0;
  }

  /**
   * Why Pacemaker leaves this resource alone on `node` now (maintenance-mode, node maintenance,
   * the resource's maintenance or is-managed=false), from the CIB's configuration; undefined when
   * it manages it, or when the CIB cannot be read (the caller then acts as usual).
   */
  async unmanagedReason(node: string): Promise<Unmanaged | undefined> {
    const r = await this.#tool("cibadmin", ["-Q", "-o", "configuration"]);
    if (r.code !== 0 || !r.stdout.includes("<")) return undefined;
    // cibadmin -Q -o configuration prints the section itself: wrap it so the reader finds it.
    return unmanagedReason(parseXml(`<cib>${r.stdout}</cib>`), {
      resource: this.names.resource,
      node,
    });
  }

  /** crm_attribute's arguments naming `<rsc>_REPL_INFO` (a cluster property in its set). */
  #replInfoArgs(): string[] {
    return ["-t", "crm_config", "-s", REPL_INFO_SET, "-n", this.names.replInfo];
  }

  /** Reads `<rsc>_REPL_INFO` and says whether it is set, unset, malformed or unreadable. */
  async readReplInfo(): Promise<ReplInfoRead> {
    const r = await this.#tool("crm_attribute", [...this.#replInfoArgs(), "-G", "-q"]);
    if (this.unavailable) return { state: "unreachable" };
    return readOfReplInfo(r.code === 0 ? r.stdout : undefined);
  }

  /**
   * Deletes `<rsc>_REPL_INFO` (a site without the booth ticket: what it names is no master any
   * more, and must not be taken for one when the site gets the ticket back).
   */
  async clearReplInfo(): Promise<boolean> {
    const r = await this.#tool("crm_attribute", [...this.#replInfoArgs(), "-D"]);
    if (r.code === 0) {
      this.#remember("replinfo", undefined);
      this.#log.info(`Deleted ${this.names.replInfo}: this site does not hold the master`);
    }
    return r.code === 0;
  }

  /** The validated `<rsc>_REPL_INFO`, or undefined (unset, malformed or unreachable). */
  async replInfo(): Promise<ReplInfo | undefined> {
    const read = await this.readReplInfo();
    return read.state === "set" ? read.info : undefined;
  }

  /** Publishes `<rsc>_REPL_INFO` (the caller checks that it changed). */
  async setReplInfo(info: ReplInfo): Promise<boolean> {
    const value = encodeReplInfo(info);
    const r = await this.#tool("crm_attribute", [...this.#replInfoArgs(), "-v", value]);
    if (r.code === 0) {
      this.#remember("replinfo", value);
      this.#log.info(`Published ${this.names.replInfo}=${value}`);
    } else {
      this.#log.warn(
        `Publishing ${this.names.replInfo}=${value} failed (${r.stderr || `exit ${r.code}`})`,
      );
    }
    return r.code === 0;
  }

  /** What this node last published as `<rsc>_REPL_INFO` (undefined on a refresh). */
  cachedReplInfo(): ReplInfo | undefined {
    const v = this.#cached("replinfo");
    return v === undefined ? undefined : decodeReplInfo(v);
  }
}

function onNode(node: string | undefined): string[] {
  return node === undefined ? [] : ["-N", node];
}

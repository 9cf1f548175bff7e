/**
 * The only place that runs Pacemaker's tools: promotion scores (crm_attribute --promotion), node
 * attributes, private attributes (attrd_updater -p), the `<rsc>_REPL_INFO` cluster property and
 * the node name. Writes only when a value changes; every value read back is validated, since a CIB
 * value is untrusted input. Never throws: outside a cluster the tools fail, and the agent copes.
 *
 * @module
 */

import type { Logger } from "./ocf.ts";

/** Result of running a tool. */
export interface ToolResult {
  /** Exit code (127 when the tool is missing, 124 on timeout). */
  code: number;
  /** Standard output, trimmed. */
  stdout: string;
  /** Standard error, trimmed. */
  stderr: string;
}

/** Runs a tool; replaceable in tests. */
export type ToolRunner = (cmd: string, args: string[]) => Promise<ToolResult>;

/**
 * Where Pacemaker's tools are: /usr/sbin, or PRM_PCMK_TOOLS_DIR (tests point it at fakes that
 * keep attributes in files, to drive the agent's cluster paths without a cluster).
 */
export const PCMK_TOOLS_DIR: string = toolsDir();

function toolsDir(): string {
  try {
    return Deno.env.get("PRM_PCMK_TOOLS_DIR") || "/usr/sbin";
  } catch {
    // No env permission (a library user): the real tools.
    return "/usr/sbin";
  }
}

/** Runs a Pacemaker tool from {@link PCMK_TOOLS_DIR} with a 15 s limit. */
export async function runTool(cmd: string, args: string[]): Promise<ToolResult> {
  const path = cmd.startsWith("/") ? cmd : `${PCMK_TOOLS_DIR}/${cmd}`;
  try {
    const out = await new Deno.Command(path, {
      args,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
      // A clean environment: with OCF_RESKEY_CRM_meta_on_node set (as Pacemaker sets it for
      // agents), attrd_updater -Q -A answers for that node only.
      clearEnv: true,
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" },
      signal: AbortSignal.timeout(15_000),
    }).output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      stdout: dec.decode(out.stdout).trim(),
      stderr: dec.decode(out.stderr).trim(),
    };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return { code: 127, stdout: "", stderr: `${path} not found` };
    }
    return { code: 124, stdout: "", stderr: `${path}: ${(err as Error).message}` };
  }
}

/** The published master: `host|file|pos`. */
export interface ReplInfo {
  /** Master node name (replicas connect to it). */
  host: string;
  /** Binlog file replicas start from. */
  file: string;
  /** Position in that file. */
  pos: number;
}

/** Host names and addresses accepted from the CIB. */
export function isValidHost(host: string): boolean {
  return /^[A-Za-z0-9]([A-Za-z0-9_.:-]{0,252}[A-Za-z0-9])?$/.test(host);
}

/** Parses a `<rsc>_REPL_INFO` value (untrusted): undefined when malformed. */
export function parseReplInfo(value: string): ReplInfo | undefined {
  const parts = value.trim().split("|");
  if (parts.length !== 3) return undefined;
  const [host, file, pos] = parts;
  if (!isValidHost(host)) return undefined;
  if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}$/.test(file)) return undefined;
  if (!/^\d{1,15}$/.test(pos)) return undefined;
  return { host, file, pos: Number(pos) };
}

/** Formats a {@link ReplInfo}. */
export function formatReplInfo(info: ReplInfo): string {
  return `${info.host}|${info.file}|${info.pos}`;
}

/** Parses `attrd_updater -Q -A` output into node → value. */
export function parseAttrdQuery(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /name="[^"]*"\s+host="([^"]*)"\s+value="([^"]*)"/.exec(line);
    // A deleted private attribute reads back as an empty value: treat it as absent.
    if (m && isValidHost(m[1]) && m[2] !== "") out.set(m[1], m[2]);
  }
  return out;
}

/** Options for {@link Cib}. */
export interface CibOptions {
  /** Logger for failures. */
  log: Logger;
  /** Tool runner (tests pass a fake). */
  runner?: ToolRunner;
  /** JSON file caching values this node wrote, to skip reads when unchanged. */
  cacheFile?: string;
  /** Ignore the cache (probes: the CIB may have been wiped). */
  refresh?: boolean;
}

/** Pacemaker access for one resource. */
export class Cib {
  #rsc: string;
  #log: Logger;
  #run: ToolRunner;
  #cacheFile?: string;
  #cache: Record<string, string> = {};
  #refresh: boolean;
  #dirty = false;
  /** Set once a tool failed because no cluster is reachable (logged once). */
  unavailable = false;

  /** Creates the accessor for resource `rsc` (no clone suffix). */
  constructor(rsc: string, options: CibOptions) {
    this.#rsc = rsc;
    this.#log = options.log;
    this.#run = options.runner ?? runTool;
    this.#cacheFile = options.cacheFile;
    this.#refresh = options.refresh ?? false;
    if (this.#cacheFile !== undefined && !this.#refresh) {
      try {
        const parsed = JSON.parse(Deno.readTextFileSync(this.#cacheFile));
        if (parsed && typeof parsed === "object") this.#cache = parsed;
      } catch {
        // No cache yet.
      }
    }
  }

  async #tool(cmd: string, args: string[]): Promise<ToolResult> {
    const r = await this.#run(cmd, args);
    if (r.code === 127 || /connect|not connected|Transport endpoint/i.test(r.stderr)) {
      if (!this.unavailable) {
        this.#log.warn(
          `Pacemaker not reachable (${cmd}: ${r.stderr || `exit ${r.code}`}); going on`,
        );
      }
      this.unavailable = true;
    } else if (r.code !== 0 && r.code !== 105 && r.code !== 6) {
      this.#log.debug(`${cmd} ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    }
    return r;
  }

  /** Persists the write cache. */
  save(): void {
    if (this.#cacheFile === undefined || !this.#dirty) return;
    try {
      Deno.mkdirSync(this.#cacheFile.slice(0, this.#cacheFile.lastIndexOf("/")), {
        recursive: true,
      });
      Deno.writeTextFileSync(this.#cacheFile, JSON.stringify(this.#cache));
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
    const args = [`--promotion=${this.#rsc}`, "-G", "-q", ...(node ? ["-N", node] : [])];
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
    const args = want === undefined
      ? [`--promotion=${this.#rsc}`, "-D", ...(node ? ["-N", node] : [])]
      : [`--promotion=${this.#rsc}`, "-v", want, ...(node ? ["-N", node] : [])];
    const r = await this.#tool("crm_attribute", args);
    if (r.code === 0) this.#remember(key, want ?? "");
    this.#log.info(
      `Promotion score ${node ?? "(this node)"}: ${current ?? "none"} -> ${want ?? "none"}`,
    );
    return r.code === 0;
  }

  /** Reads a transient node attribute. */
  async nodeAttribute(name: string, node?: string): Promise<string | undefined> {
    const args = ["-n", name, "-l", "reboot", "-G", "-q", ...(node ? ["-N", node] : [])];
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
    if (r.code === 0) this.#remember(key, value ?? "");
    this.#log.info(`Node attribute ${name}: ${current ?? "none"} -> ${value ?? "none"}`);
    return r.code === 0;
  }

  /** Sets a private attribute (attrd only, never in the CIB) on this node; undefined deletes. */
  async setPrivate(name: string, value: string | undefined, node?: string): Promise<boolean> {
    const args = value === undefined ? ["-p", "-n", name, "-D"] : ["-p", "-n", name, "-U", value];
    if (node !== undefined) args.push("-N", node);
    const r = await this.#tool("attrd_updater", args);
    return r.code === 0;
  }

  /**
   * Clears this resource's failures and operation history on `node` (crm_resource --cleanup):
   * Pacemaker probes it again and lifts what the failures caused (a migration-threshold ban).
   */
  async cleanupFailures(node: string): Promise<boolean> {
    const r = await this.#tool("crm_resource", ["--cleanup", "-r", this.#rsc, "-N", node]);
    return r.code === 0;
  }

  /** Reads a private attribute on every node: node → value. */
  async privateAll(name: string): Promise<Map<string, string>> {
    const r = await this.#tool("attrd_updater", ["-p", "-n", name, "-Q", "-A"]);
    if (r.code !== 0) return new Map();
    return parseAttrdQuery(r.stdout);
  }

  /** The cluster property holding the published master. */
  get replInfoName(): string {
    return `${this.#rsc}_REPL_INFO`;
  }

  /** Reads and validates `<rsc>_REPL_INFO`. */
  async replInfo(): Promise<ReplInfo | undefined> {
    const r = await this.#tool("crm_attribute", [
      "-t",
      "crm_config",
      "-s",
      "mysql_replication",
      "-n",
      this.replInfoName,
      "-G",
      "-q",
    ]);
    if (r.code !== 0 || r.stdout === "") return undefined;
    const info = parseReplInfo(r.stdout);
    if (info === undefined) this.#log.warn(`Ignoring malformed ${this.replInfoName} value`);
    return info;
  }

  /** Publishes `<rsc>_REPL_INFO` (the caller checks that it changed). */
  async setReplInfo(info: ReplInfo): Promise<boolean> {
    const value = formatReplInfo(info);
    const r = await this.#tool("crm_attribute", [
      "-t",
      "crm_config",
      "-s",
      "mysql_replication",
      "-n",
      this.replInfoName,
      "-v",
      value,
    ]);
    this.#log.info(`Published ${this.replInfoName}=${value}: ${r.code === 0 ? "ok" : r.stderr}`);
    if (r.code === 0) this.#remember("replinfo", value);
    return r.code === 0;
  }

  /** What this node last published as `<rsc>_REPL_INFO` (undefined on a refresh). */
  cachedReplInfo(): ReplInfo | undefined {
    const v = this.#cached("replinfo");
    return v === undefined ? undefined : parseReplInfo(v);
  }
}

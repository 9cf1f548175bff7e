/**
 * Pacemaker's tools without a cluster, for agent tests: `fake_pacemaker.sh` installed as
 * crm_attribute, attrd_updater, crm_node, crm_resource, cibadmin and crm_mon in a temporary
 * directory that the agent uses through PRM_PCMK_TOOLS_DIR (see cib.ts), with every attribute in
 * a file (the layout is in fake_pacemaker.sh's header). The test reads and seeds attributes with
 * typed helpers, sees every call the agent made, and can make a tool hang, slow down or fail.
 *
 * The lab tests run the real tools under a real Pacemaker; these fakes follow the real tools'
 * options, output formats and exit codes for what prm calls (Pacemaker 2.1.5).
 *
 * @module
 */
import { runTool, TOOL_MAX_MS, type ToolResult } from "../cib.ts";
import { attributeNames } from "../attrs.ts";
import { processAlive } from "../mysqld.ts";
import { trustedTempDir } from "./trusted_dir.ts";

const SCRIPT = new URL("./fake_pacemaker.sh", import.meta.url);

/** The tools the fakes stand in for. */
export const FAKE_TOOLS = [
  "crm_attribute",
  "attrd_updater",
  "crm_node",
  "crm_resource",
  "cibadmin",
  "crm_mon",
  "crm_ticket",
  "geostore",
] as const;

/** One of {@link FAKE_TOOLS}. */
export type FakeTool = (typeof FAKE_TOOLS)[number];

/** Options of {@link FakePacemaker.create}. */
export interface FakePacemakerOptions {
  /** This node's name (crm_node -n, the target when no -N is given). Default "nodeA". */
  node?: string;
  /** Every node of the cluster. Default: this node, "nodeB" and "nodeC". */
  nodes?: string[];
  /** The members of this node's partition (crm_node -p). Default: every node. */
  partition?: string[];
  /** Parent directory of the temporary directory. Default: a new one of trusted_dir.ts. */
  baseDir?: string;
}

/**
 * A tool misbehaving, for deadline and failure tests. Applies to the calls whose arguments, joined
 * by spaces, contain `match` (default: every call), the first `times` of them (default: all).
 */
export type ToolFault =
  & {
    /** Only calls whose joined arguments contain this text. */
    match?: string;
    /** Only the first this many matching calls. */
    times?: number;
  }
  & (
    | {
      /** Never answers (sleeps `seconds`, default 300, then exits 1). */
      kind: "hang";
      /** Ignore SIGTERM too, as a tool stuck in the kernel would (only SIGKILL ends it). */
      ignoreTerm?: boolean;
      /** How long it sleeps. Default 300 s. */
      seconds?: number;
    }
    | {
      /** Answers late: sleeps `seconds`, then does its job. */
      kind: "delay";
      /** Delay in seconds (fractions allowed). */
      seconds: number;
    }
    | {
      /** Fails at once with `code`, printing `stderr`. */
      kind: "fail";
      /** Exit code. */
      code: number;
      /** Standard error text. Default "(fake failure)". */
      stderr?: string;
    }
  );

/**
 * What the real tools print outside a cluster (captured on this host with Pacemaker 2.1.5 and
 * no cluster running): exit 102 with these messages.
 */
export const NO_CLUSTER: Record<FakeTool, ToolFault> = {
  crm_attribute: {
    kind: "fail",
    code: 102,
    stderr: "crm_attribute: Could not connect to the CIB: Transport endpoint is not connected",
  },
  attrd_updater: {
    kind: "fail",
    code: 102,
    stderr: "attrd_updater: Could not connect to attrd: Connection refused",
  },
  crm_ticket: {
    kind: "fail",
    code: 102,
    stderr: "crm_ticket: Could not connect to the CIB: Transport endpoint is not connected",
  },
  geostore: {
    kind: "fail",
    code: 1,
    stderr: "connect to 10.0.0.1 got an error: Connection refused",
  },
  crm_node: {
    kind: "fail",
    code: 102,
    stderr: "error: Could not connect to controller: Connection refused",
  },
  crm_resource: {
    kind: "fail",
    code: 102,
    stderr: "crm_resource: Could not connect to the CIB: Transport endpoint is not connected\n" +
      "Error performing operation: Not connected",
  },
  cibadmin: {
    kind: "fail",
    code: 102,
    stderr: "Could not connect to the CIB: Transport endpoint is not connected",
  },
  crm_mon: {
    kind: "fail",
    code: 102,
    stderr: "crm_mon: Error: cluster is not available on this node",
  },
};

/** One call of a fake tool. */
export interface ToolCall {
  /** Tool name. */
  tool: FakeTool;
  /** Its arguments. */
  args: string[];
}

/** Node → attribute name → value. */
export type NodeValues = Record<string, Record<string, string>>;

/** Every attribute the fakes hold, as plain data (for deepEqual and failure messages). */
export interface AttributeSnapshot {
  /** Transient node attributes (promotion scores are `master-<resource>`). */
  status: NodeValues;
  /** Permanent node attributes. */
  nodes: NodeValues;
  /** Private attributes (a deleted one is left out). */
  private: NodeValues;
  /** Cluster properties: set → name → value. */
  crmConfig: NodeValues;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The bash snippet fake_pacemaker.sh sources before doing its job. */
function faultScript(fault: ToolFault, hitsDir: string): string {
  let act: string;
  switch (fault.kind) {
    case "hang":
      // exec keeps the pid the caller knows; an ignored signal stays ignored across exec.
      act = `echo $$ >>"$STATE/hung"; ${fault.ignoreTerm ? "trap '' TERM; " : ""}` +
        `exec sleep ${fault.seconds ?? 300}`;
      break;
    case "delay":
      act = `sleep ${fault.seconds}`;
      break;
    case "fail":
      act = `printf '%s\\n' ${
        shellQuote(fault.stderr ?? "(fake failure)")
      } >&2; exit ${fault.code}`;
      break;
  }
  const lines = ["applies=1"];
  if (fault.match !== undefined) {
    lines.push(`[[ "$*" == *${shellQuote(fault.match)}* ]] || applies=0`);
  }
  if (fault.times !== undefined) {
    // mkdir is atomic: concurrent calls each take a different slot, or none.
    lines.push(
      'if [ "$applies" = 1 ]; then',
      "  applies=0",
      `  for i in $(seq 1 ${fault.times}); do`,
      `    if mkdir ${shellQuote(hitsDir)}/$i 2>/dev/null; then applies=1; break; fi`,
      "  done",
      "fi",
    );
  }
  lines.push(`if [ "$applies" = 1 ]; then ${act}; fi`);
  return lines.join("\n") + "\n";
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

function readTree(dir: string): NodeValues {
  const out: NodeValues = {};
  let groups: Deno.DirEntry[];
  try {
    groups = [...Deno.readDirSync(dir)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return out;
    throw err;
  }
  for (const g of groups.filter((e) => e.isDirectory).sort((a, b) => a.name < b.name ? -1 : 1)) {
    const values: Record<string, string> = {};
    const names = [...Deno.readDirSync(`${dir}/${g.name}`)].filter((e) =>
      e.isFile && !e.name.includes(".tmp.")
    ).map((e) => e.name).sort();
    for (const n of names) values[n] = Deno.readTextFileSync(`${dir}/${g.name}/${n}`);
    if (names.length > 0) out[g.name] = values;
  }
  return out;
}

function checkName(name: string): string {
  if (!/^[A-Za-z0-9_.:-]+$/.test(name)) throw new TypeError(`Unsupported name ${name}`);
  return name;
}

function writeValue(path: string, value: string | undefined): void {
  if (value === undefined) {
    try {
      Deno.removeSync(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    return;
  }
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const tmp = `${path}.tmp.${Deno.pid}`;
  Deno.writeTextFileSync(tmp, value);
  Deno.renameSync(tmp, path);
}

/**
 * A fake Pacemaker for one node: its tools in {@link toolsDir}, its attributes in files.
 *
 * @example
 * ```ts
 * await using pcmk = await FakePacemaker.create({ node: "nodeA" });
 * pcmk.setPrivateAttribute("prm-p_mysql-pos", "127.0.0.1|mysql-bin.000003|900", "nodeB");
 * // ... run the agent with { PRM_PCMK_TOOLS_DIR: pcmk.toolsDir } ...
 * console.assert(pcmk.promotionScore("p_mysql", "nodeB") === 150);
 * ```
 */
export class FakePacemaker {
  /** The temporary directory (tools and state). */
  readonly dir: string;
  /** Where the tools are: the agent's PRM_PCMK_TOOLS_DIR. */
  readonly toolsDir: string;
  /** This node's name. */
  readonly node: string;
  /** Every node. */
  readonly nodes: readonly string[];
  readonly #state: string;

  private constructor(dir: string, node: string, nodes: string[]) {
    this.dir = dir;
    this.toolsDir = `${dir}/bin`;
    this.#state = `${dir}/state`;
    this.node = node;
    this.nodes = nodes;
  }

  /** Installs the fakes in a new temporary directory. */
  static async create(options: FakePacemakerOptions = {}): Promise<FakePacemaker> {
    const node = checkName(options.node ?? "nodeA");
    const nodes = (options.nodes ?? [node, "nodeB", "nodeC"]).map(checkName);
    if (!nodes.includes(node)) nodes.unshift(node);
    const dir = options.baseDir === undefined
      ? trustedTempDir("prm-fake-pcmk-", 0o755)
      : await Deno.makeTempDir({ dir: options.baseDir, prefix: "prm-fake-pcmk-" });
    const p = new FakePacemaker(dir, node, nodes);
    try {
      const script = await Deno.readTextFile(SCRIPT);
      await Deno.mkdir(p.toolsDir);
      await Deno.mkdir(`${p.#state}/faults`, { recursive: true });
      for (const tool of FAKE_TOOLS) {
        await Deno.writeTextFile(`${p.toolsDir}/${tool}`, script, { mode: 0o755 });
        await Deno.chmod(`${p.toolsDir}/${tool}`, 0o755);
      }
      await Deno.writeTextFile(`${p.#state}/local_node`, node);
      await Deno.writeTextFile(`${p.#state}/nodes`, nodes.join("\n") + "\n");
      const partition = (options.partition ?? nodes).map(checkName);
      await Deno.writeTextFile(`${p.#state}/partition`, partition.join("\n") + "\n");
      await Deno.writeTextFile(`${p.#state}/calls`, "");
    } catch (err) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw err;
    }
    return p;
  }

  /** The environment that points the agent at these tools. */
  env(): Record<string, string> {
    return { PRM_PCMK_TOOLS_DIR: this.toolsDir };
  }

  /**
   * A cib.ts/status.ts tool runner that runs these fakes (through cib.ts's runTool); the time
   * limit defaults to cib.ts's per-call maximum.
   */
  readonly runner: (cmd: string, args: string[], timeoutMs?: number) => Promise<ToolResult> = (
    cmd: string,
    args: string[],
    timeoutMs = TOOL_MAX_MS,
  ): Promise<ToolResult> => runTool(`${this.toolsDir}/${cmd}`, args, timeoutMs);

  // -- Reading ----------------------------------------------------------------------------------

  /** A transient node attribute (crm_attribute -l reboot), this node's unless `node`. */
  nodeAttribute(name: string, node = this.node): string | undefined {
    return readText(`${this.#state}/cib/status/${checkName(node)}/${checkName(name)}`);
  }

  /** The promotion score of `resource` (the node attribute crm_attribute --promotion writes). */
  promotionScore(resource: string, node = this.node): number | undefined {
    const v = this.nodeAttribute(attributeNames(resource).promotion, node);
    return v === undefined ? undefined : Number(v);
  }

  /** A private attribute (attrd_updater -p); undefined when unset or deleted. */
  privateAttribute(name: string, node = this.node): string | undefined {
    const v = readText(`${this.#state}/attrd/${checkName(node)}/${checkName(name)}`);
    return v === "" ? undefined : v;
  }

  /** A cluster property (crm_attribute -t crm_config). */
  property(name: string, set = "cib-bootstrap-options"): string | undefined {
    return readText(`${this.#state}/cib/crm_config/${checkName(set)}/${checkName(name)}`);
  }

  /** Every attribute, as plain data. */
  snapshot(): AttributeSnapshot {
    const priv = readTree(`${this.#state}/attrd`);
    for (const [node, values] of Object.entries(priv)) {
      for (const [k, v] of Object.entries(values)) if (v === "") delete values[k];
      if (Object.keys(values).length === 0) delete priv[node];
    }
    return {
      status: readTree(`${this.#state}/cib/status`),
      nodes: readTree(`${this.#state}/cib/nodes`),
      private: priv,
      crmConfig: readTree(`${this.#state}/cib/crm_config`),
    };
  }

  /** Every call made so far (of `tool` only, when given), oldest first. */
  calls(tool?: FakeTool): ToolCall[] {
    const text = Deno.readTextFileSync(`${this.#state}/calls`);
    return text.split("\n").filter((l) => l !== "").map((l) => {
      const [name, ...args] = l.split("\t");
      return { tool: name as FakeTool, args };
    }).filter((c) => tool === undefined || c.tool === tool);
  }

  /** The crm_resource --cleanup calls made so far: which resource on which node. */
  cleanups(): { resource: string; node: string }[] {
    return this.calls("crm_resource").map((c) => ({
      resource: c.args[c.args.indexOf("-r") + 1],
      node: c.args[c.args.indexOf("-N") + 1],
    }));
  }

  // -- Seeding (what another node, or a person, would have written) ---------------------------

  /** Sets (undefined: deletes) a transient node attribute. */
  setNodeAttribute(name: string, value: string | undefined, node = this.node): void {
    writeValue(`${this.#state}/cib/status/${checkName(node)}/${checkName(name)}`, value);
  }

  /** Sets (undefined: deletes) the promotion score of `resource` on `node`. */
  setPromotionScore(resource: string, score: number | undefined, node = this.node): void {
    const name = attributeNames(resource).promotion;
    this.setNodeAttribute(name, score === undefined ? undefined : String(score), node);
  }

  /** Sets a private attribute; undefined deletes it the way attrd does (an empty value). */
  setPrivateAttribute(name: string, value: string | undefined, node = this.node): void {
    const path = `${this.#state}/attrd/${checkName(node)}/${checkName(name)}`;
    if (value !== undefined || readText(path) !== undefined) writeValue(path, value ?? "");
  }

  /** Sets (undefined: deletes) a cluster property. */
  setProperty(name: string, value: string | undefined, set = "cib-bootstrap-options"): void {
    writeValue(`${this.#state}/cib/crm_config/${checkName(set)}/${checkName(name)}`, value);
  }

  /**
   * A booth ticket's state at this site, as booth writes it (`granted`) and as the other site's
   * geostore stored attributes here; undefined: never granted here (crm_ticket exit 105).
   */
  setTicket(ticket: string, state: Record<string, string> | undefined): void {
    const dir = `${this.#state}/tickets/${checkName(ticket)}`;
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (state === undefined) return;
    for (const [k, v] of Object.entries(state)) writeValue(`${dir}/${checkName(k)}`, v);
  }

  /** The ticket's attributes at this site (after the agent deleted stale ones). */
  ticketAttributes(ticket: string): Record<string, string> {
    return readTree(`${this.#state}/tickets`)[checkName(ticket)] ?? {};
  }

  /** What geostore stored at the other site for `ticket`. */
  otherSite(ticket: string): Record<string, string> {
    return readTree(`${this.#state}/other_site`)[checkName(ticket)] ?? {};
  }

  /** What cibadmin -Q and crm_mon --output-as=xml print. */
  setXml(xml: { cib?: string; crmMon?: string }): void {
    if (xml.cib !== undefined) Deno.writeTextFileSync(`${this.#state}/cib.xml`, xml.cib);
    if (xml.crmMon !== undefined) Deno.writeTextFileSync(`${this.#state}/crm_mon.xml`, xml.crmMon);
  }

  // -- Faults -----------------------------------------------------------------------------------

  /** Makes `tool` misbehave from its next call on; undefined restores it. */
  fault(tool: FakeTool, fault: ToolFault | undefined): void {
    const path = `${this.#state}/faults/${tool}.sh`;
    const hits = `${this.#state}/faults/${tool}.hits`;
    try {
      Deno.removeSync(hits, { recursive: true });
    } catch {
      // No earlier counted fault.
    }
    if (fault === undefined) {
      try {
        Deno.removeSync(path);
      } catch {
        // Not faulty.
      }
      return;
    }
    if (fault.times !== undefined) Deno.mkdirSync(hits);
    Deno.writeTextFileSync(`${path}.tmp`, faultScript(fault, hits));
    Deno.renameSync(`${path}.tmp`, path);
  }

  /** Every tool fails as the real ones do outside a cluster ({@link NO_CLUSTER}). */
  down(): void {
    for (const tool of FAKE_TOOLS) this.fault(tool, NO_CLUSTER[tool]);
  }

  /** Pids of tools hung by a "hang" fault that still run. */
  hungPids(): number[] {
    const text = readText(`${this.#state}/hung`) ?? "";
    return text.split("\n").filter((l) => /^\d+$/.test(l)).map(Number).filter((pid) =>
      processAlive(pid)
    );
  }

  /** Kills the hung tools (by pid) and removes the directory. */
  async cleanup(): Promise<void> {
    for (const pid of this.hungPids()) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /** Same as {@link cleanup}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.cleanup();
  }
}

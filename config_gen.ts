/**
 * `mysql_prm config`: prints a complete, commented Pacemaker configuration for a mysql_prm
 * promotable clone with a writer VIP, reader VIPs and fencing, once for crm shell and once as a
 * shell script of pcs commands that edit a CIB file which is then pushed with cibadmin.
 *
 * Everything here is pure (flags in, text out) except {@linkcode configMain}, which only prints.
 *
 * @example
 * ```ts
 * import { generateConfig, parseConfigArgs } from "./config_gen.ts";
 * const options = parseConfigArgs([
 *   "--node", "db1=10.0.0.11", "--node", "db2=10.0.0.12",
 *   "--writer-vip", "10.0.0.100/24", "--credentials-file", "/etc/mysql/prm.cnf",
 * ]);
 * const { crm, pcs } = generateConfig(options);
 * ```
 *
 * @module
 */
import { parseFlags } from "./cli_args.ts";
import { attributeNames, DEFAULT_READER_ATTRIBUTE, SCORE } from "./attrs.ts";
import { PARAM_DEFAULTS, PARAMS } from "./params.ts";
import { ipFamily } from "./position.ts";

/** Parameter names the mysql_prm agent accepts, allowed with `--param` (from its meta-data table). */
export const AGENT_PARAMETERS: readonly string[] = PARAMS.map((p) => p.name);

/** Agent parameter that selects GTID or binlog-position replication (set by `--mode`). */
export const MODE_PARAMETER = "replication_mode";
/** Agent parameter that turns semi-synchronous replication on (set by `--semi-sync`). */
export const SEMI_SYNC_PARAMETER = "semi_sync";

/** Agent parameter naming the booth ticket of a two-site cluster (set by the two-site form). */
export const BOOTH_TICKET_PARAMETER = "booth_ticket";
/** Agent parameter naming the booth configuration file (set by `--booth-config`). */
export const BOOTH_CONFIG_PARAMETER = "booth_config";

/** Parameters that have a dedicated flag: `--param` refuses them and names the flag. */
const DEDICATED_FLAGS: Record<string, string> = {
  credentials_file: "--credentials-file",
  [MODE_PARAMETER]: "--mode",
  [SEMI_SYNC_PARAMETER]: "--semi-sync",
  [BOOTH_TICKET_PARAMETER]: "--site and --ticket",
  [BOOTH_CONFIG_PARAMETER]: "--booth-config",
};

/** Timeouts of the clone's operations, in seconds; the comments in the output say why. */
export const OPERATION_TIMEOUTS = {
  start: 900,
  stop: 600,
  promote: 300,
  demote: 120,
  notify: 300,
  monitor: 30,
} as const;

/** Scores of the reader VIP placement; finite, so VIPs still share a node when nodes are few. */
export const READER_SCORES = {
  /**
   * A reader VIP avoids the master's node (the busiest one), found by its promotion score: a
   * location rule, not a colocation with the writer VIP, because Pacemaker 2.1 folds the
   * preferences of resources colocated with the writer VIP into the choice of the promoted node
   * (measured with crm_simulate: a master with a score of 100 and no reader attribute dropped to
   * 1 and lost the election), and the election must follow the agent's scores alone.
   */
  awayFromMaster: -500,
  /** Two reader VIPs avoid each other; weaker than the above, stronger than stickiness. */
  awayFromReader: -200,
  /**
   * A readable node attracts reader VIPs. Pacemaker rolls a negative colocation back when it
   * leaves a resource no node with a score of 0 or more, so without this positive base a second
   * reader VIP would ignore the first whenever the only other readable node is the master.
   */
  readableNode: 10000,
} as const;

/**
 * The promotion score the agent keeps on the promoted node (election.ts SCORE.PROMOTED); replicas
 * score below it, so `master-<resource> >= this` is true on the master's node only.
 */
export const PROMOTED_SCORE: number = SCORE.PROMOTED;

/** Resource defaults (rsc_defaults) written into every configuration. */
export const RESOURCE_DEFAULTS = {
  "resource-stickiness": "100",
  "migration-threshold": "3",
  "failure-timeout": "600s",
} as const;

/** Operation defaults (op_defaults) written into every configuration. */
export const OP_DEFAULTS = {
  timeout: "60s",
  "record-pending": "true",
} as const;

/** A cluster node: its Pacemaker/corosync name and the address its peers reach it at. */
export interface NodeSpec {
  name: string;
  address: string;
}

/** A virtual IP address with its optional prefix length (`cidr_netmask` of IPaddr2). */
export interface VipSpec {
  address: string;
  prefix?: number;
}

/** A fencing parameter, for every device or (with `node`) for one node's device only. */
export interface FenceParam {
  node?: string;
  key: string;
  value: string;
}

/** Everything the generator needs; {@linkcode parseConfigArgs} builds it from flags. */
export interface ConfigOptions {
  nodes: NodeSpec[];
  writerVip: VipSpec;
  readerVips: VipSpec[];
  /** Network interface for the VIPs (IPaddr2 `nic`); IPaddr2 finds it from the routes if unset. */
  vipNic?: string;
  credentialsFile: string;
  mode: "gtid" | "position";
  semiSync: boolean;
  /** Monitor interval of the promoted role, in milliseconds. */
  monitorPromotedMs: number;
  /** Monitor interval of the unpromoted role, in milliseconds. */
  monitorUnpromotedMs: number;
  /** Name of the primitive; the clone is `<resource>-clone`. */
  resource: string;
  format: "crm" | "pcs" | "both";
  /** Lab cluster: without a fence agent, fencing is disabled (the only way to get that). */
  lab: boolean;
  /** Extra agent parameters, in the order given. */
  params: [string, string][];
  /** Fence agent for one stonith device per node; unset means a placeholder fence_ipmilan. */
  fenceAgent?: string;
  fenceParams: FenceParam[];
  /** Two sites: this cluster's part of the booth setup. */
  geo?: GeoSite;
}

/** One site's part of a two-site (booth) configuration. */
export interface GeoSite {
  /** This site's name (from `--site`). */
  site: string;
  /** This site's booth address: a floating IP the cluster runs with boothd. */
  boothAddress: VipSpec;
  /** The booth ticket that decides where the master runs. */
  ticket: string;
  /** Path of booth.conf on the nodes. */
  boothConfig: string;
  /** The other site's name, booth address and nodes. */
  other: { site: string; address: string; nodes: NodeSpec[] };
}

/** The two forms of the configuration. */
export interface GeneratedConfig {
  /** For `crm configure load update FILE`. */
  crm: string;
  /** A /bin/sh script of `pcs -f CIB_FILE ...` commands followed by `cibadmin --replace`. */
  pcs: string;
}

/** A bad flag or value; configMain prints its message and exits with 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** A node or site name: letters, digits, `_`, `.`, `-`, starting and ending with a letter or digit. */
export const NAME_PATTERN: RegExp = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
const ID_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const BARE_VALUE_PATTERN = /^[A-Za-z0-9_.:\/@%+,=-]+$/;

/** The flags of the one-site form, as parseFlags (cli_args.ts) takes them (the two-site form too). */
export const CONFIG_FLAGS = {
  "node": { type: "string", multiple: true },
  "writer-vip": { type: "string" },
  "reader-vip": { type: "string", multiple: true },
  "vip-nic": { type: "string" },
  "credentials-file": { type: "string" },
  "mode": { type: "string" },
  "semi-sync": { type: "boolean" },
  "monitor-interval-promoted": { type: "string" },
  "monitor-interval-unpromoted": { type: "string" },
  "resource": { type: "string" },
  "param": { type: "string", multiple: true },
  "fence-agent": { type: "string" },
  "fence-param": { type: "string", multiple: true },
  "format": { type: "string" },
  "lab": { type: "boolean" },
  "help": { type: "boolean", short: "h" },
} as const;

/**
 * Parses `mysql_prm config` flags into {@linkcode ConfigOptions}.
 *
 * Throws {@linkcode ConfigError} with a message that says what to fix for any unknown flag or bad
 * value. `--help` is not handled here (see {@linkcode configMain}).
 */
export function parseConfigArgs(args: string[]): ConfigOptions {
  let parsed;
  try {
    parsed = parseFlags(args, {
      allowPositionals: false,
      options: CONFIG_FLAGS,
    });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message} (see mysql_prm config --help)`);
  }
  const values = parsed.values;

  const nodes = (values.node ?? []).map(parseNode);
  if (nodes.length < 2) {
    throw new ConfigError(
      `At least two --node NAME=ADDRESS flags are needed (got ${nodes.length}): a cluster of one node cannot fail over`,
    );
  }
  const seenNames = new Map<string, string>();
  const seenAddresses = new Map<string, string>();
  for (const node of nodes) {
    const lower = node.name.toLowerCase();
    if (seenNames.has(lower)) throw new ConfigError(`Node name ${node.name} is given twice`);
    seenNames.set(lower, node.name);
    const canonical = canonicalAddress(node.address);
    const other = seenAddresses.get(canonical);
    if (other !== undefined) {
      throw new ConfigError(
        `Nodes ${other} and ${node.name} have the same address ${node.address}`,
      );
    }
    seenAddresses.set(canonical, node.name);
  }

  if (values["writer-vip"] === undefined) {
    throw new ConfigError("--writer-vip ADDRESS[/PREFIX] is required");
  }
  const writerVip = parseVip(values["writer-vip"], "--writer-vip");
  const readerVips = (values["reader-vip"] ?? []).map((text) => parseVip(text, "--reader-vip"));
  const seenVips = new Map<string, string>();
  for (
    const [flag, vip] of [
      ["--writer-vip", writerVip] as const,
      ...readerVips.map((v) => ["--reader-vip", v] as const),
    ]
  ) {
    const canonical = canonicalAddress(vip.address);
    const node = seenAddresses.get(canonical);
    if (node !== undefined) {
      throw new ConfigError(
        `${flag} ${vip.address} is the address of node ${node}: a VIP must be an address of its own`,
      );
    }
    if (seenVips.has(canonical)) {
      throw new ConfigError(
        `VIP ${vip.address} is given twice (${seenVips.get(canonical)} and ${flag})`,
      );
    }
    seenVips.set(canonical, flag);
  }

  const vipNic = values["vip-nic"];
  if (vipNic !== undefined && !/^[A-Za-z0-9_.:@-]{1,15}$/.test(vipNic)) {
    throw new ConfigError(`--vip-nic ${JSON.stringify(vipNic)} is not an interface name`);
  }

  const credentialsFile = values["credentials-file"];
  if (credentialsFile === undefined) {
    throw new ConfigError(
      "--credentials-file PATH is required: the agent reads the MySQL passwords from it, so none is stored in the CIB",
    );
  }
  if (!credentialsFile.startsWith("/")) {
    throw new ConfigError(`--credentials-file must be an absolute path, not ${credentialsFile}`);
  }
  checkValue(credentialsFile, "--credentials-file");

  const mode = values.mode ?? PARAM_DEFAULTS.replicationMode;
  if (mode !== "gtid" && mode !== "position") {
    throw new ConfigError(`--mode must be gtid or position, not ${mode}`);
  }

  const monitorPromotedMs = parseDuration(
    values["monitor-interval-promoted"] ?? "5s",
    "--monitor-interval-promoted",
  );
  const monitorUnpromotedMs = parseDuration(
    values["monitor-interval-unpromoted"] ?? "7s",
    "--monitor-interval-unpromoted",
  );
  if (monitorPromotedMs === monitorUnpromotedMs) {
    throw new ConfigError(
      "--monitor-interval-promoted and --monitor-interval-unpromoted must differ: Pacemaker tells the two monitor operations apart by their interval",
    );
  }

  const resource = values.resource ?? "p_mysql";
  if (!ID_PATTERN.test(resource)) {
    throw new ConfigError(
      `--resource ${
        JSON.stringify(resource)
      } is not a valid resource name (letters, digits, _ . -, not starting with a digit)`,
    );
  }

  const params = parseParams(values.param ?? []);

  const fenceAgent = values["fence-agent"];
  if (fenceAgent !== undefined && !/^fence_[A-Za-z0-9_]+$/.test(fenceAgent)) {
    throw new ConfigError(`--fence-agent ${fenceAgent} is not a fence agent name (fence_...)`);
  }
  const fenceParams = (values["fence-param"] ?? []).map((text) => parseFenceParam(text, seenNames));
  if (fenceAgent === undefined && fenceParams.length > 0) {
    throw new ConfigError("--fence-param needs --fence-agent");
  }

  const format = values.format ?? "both";
  if (format !== "crm" && format !== "pcs" && format !== "both") {
    throw new ConfigError(`--format must be crm, pcs or both, not ${format}`);
  }

  return {
    nodes,
    writerVip,
    readerVips,
    vipNic,
    credentialsFile,
    mode,
    semiSync: values["semi-sync"] ?? false,
    monitorPromotedMs,
    monitorUnpromotedMs,
    resource,
    format,
    lab: values.lab ?? false,
    params,
    fenceAgent,
    fenceParams,
  };
}

function parseNode(text: string): NodeSpec {
  const eq = text.indexOf("=");
  if (eq < 0) throw new ConfigError(`--node ${text}: expected NAME=ADDRESS, e.g. db1=10.0.0.11`);
  const name = text.slice(0, eq);
  const address = text.slice(eq + 1);
  if (!NAME_PATTERN.test(name)) {
    throw new ConfigError(`--node ${text}: ${JSON.stringify(name)} is not a valid node name`);
  }
  if (ipFamily(address) === 0) {
    throw new ConfigError(
      `--node ${text}: ${JSON.stringify(address)} is not an IPv4 or IPv6 address`,
    );
  }
  return { name, address };
}

/** Parses `ADDRESS[/PREFIX]` of flag `flag` (a VIP, a booth site address). */
export function parseVip(text: string, flag: string): VipSpec {
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = ipFamily(address);
  if (family === 0) {
    throw new ConfigError(
      `${flag} ${text}: ${JSON.stringify(address)} is not an IPv4 or IPv6 address`,
    );
  }
  if (slash < 0) return { address };
  const prefixText = text.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) < 1 || Number(prefixText) > max) {
    throw new ConfigError(`${flag} ${text}: the prefix length must be a number from 1 to ${max}`);
  }
  return { address, prefix: Number(prefixText) };
}

/** Canonical text of an address, so that differently written equal IPv6 addresses compare equal. */
export function canonicalAddress(address: string): string {
  if (ipFamily(address) !== 6) return address;
  let text = address.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = text.match(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = text.slice(0, v4.index) + ((a << 8) | b).toString(16) + ":" +
      ((c << 8) | d).toString(16);
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const fill = tail === undefined ? [] : Array(8 - headGroups.length - tailGroups.length).fill("0");
  return [...headGroups, ...fill, ...tailGroups].map((g) => parseInt(g, 16).toString(16)).join(":");
}

function parseDuration(text: string, flag: string): number {
  const match = text.match(/^(\d+)(ms|s|m|min|h)?$/);
  if (!match) {
    throw new ConfigError(`${flag} ${text}: expected a duration such as 5s, 500ms or 1min`);
  }
  const factor = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 }[match[2] ?? "s"]!;
  const ms = Number(match[1]) * factor;
  if (ms < 1000) throw new ConfigError(`${flag} ${text}: the interval must be at least 1s`);
  return ms;
}

function parseParams(texts: string[]): [string, string][] {
  const params: [string, string][] = [];
  const seen = new Set<string>();
  for (const text of texts) {
    const eq = text.indexOf("=");
    if (eq < 1) throw new ConfigError(`--param ${text}: expected KEY=VALUE`);
    const key = text.slice(0, eq);
    const value = text.slice(eq + 1);
    if (key.endsWith("_passwd")) {
      throw new ConfigError(
        `--param ${key}: passwords do not belong in the CIB (every node and every crm_mon/cibadmin user can read it); put them into the --credentials-file instead`,
      );
    }
    if (DEDICATED_FLAGS[key] !== undefined) {
      throw new ConfigError(`--param ${key}: use ${DEDICATED_FLAGS[key]} instead`);
    }
    if (!AGENT_PARAMETERS.includes(key)) {
      throw new ConfigError(
        `--param ${key}: mysql_prm has no such parameter; known parameters: ${
          AGENT_PARAMETERS.filter((p) => !p.endsWith("_passwd") && DEDICATED_FLAGS[p] === undefined)
            .join(", ")
        }`,
      );
    }
    if (seen.has(key)) throw new ConfigError(`--param ${key} is given twice`);
    seen.add(key);
    if (key === "reader_attribute" && !KEY_PATTERN.test(value)) {
      throw new ConfigError(`--param reader_attribute=${value}: not a valid attribute name`);
    }
    checkValue(value, `--param ${key}`);
    params.push([key, value]);
  }
  return params;
}

function parseFenceParam(text: string, nodeNames: Map<string, string>): FenceParam {
  const match = text.match(/^(?:([^:=]+):)?([^=]+)=(.*)$/s);
  if (!match) throw new ConfigError(`--fence-param ${text}: expected [NODE:]KEY=VALUE`);
  const [, nodeText, key, value] = match;
  let node: string | undefined;
  if (nodeText !== undefined) {
    node = nodeNames.get(nodeText.toLowerCase());
    if (node === undefined) {
      throw new ConfigError(`--fence-param ${text}: ${nodeText} is not one of the --node names`);
    }
  }
  if (!KEY_PATTERN.test(key)) {
    throw new ConfigError(`--fence-param ${text}: ${JSON.stringify(key)} is not a parameter name`);
  }
  if (key === "pcmk_host_list") {
    throw new ConfigError("--fence-param pcmk_host_list: it is set per device from the node name");
  }
  checkValue(value, `--fence-param ${key}`);
  return { node, key, value };
}

/** Refuses characters that cannot be quoted the same way in crm shell and POSIX sh. */
export function checkValue(value: string, flag: string): void {
  if (value === "") throw new ConfigError(`${flag}: the value is empty`);
  // deno-lint-ignore no-control-regex
  if (/["\\`$'\x00-\x1f\x7f]/.test(value)) {
    throw new ConfigError(
      `${flag}: the value must not contain quotes, backslashes, $, backticks or control characters`,
    );
  }
}

/** Quotes a value for crm shell: bare when safe, otherwise in double quotes. */
function crmValue(value: string): string {
  return BARE_VALUE_PATTERN.test(value) ? value : `"${value}"`;
}

/** Quotes one shell word: bare when safe, otherwise in single quotes. */
function shWord(value: string): string {
  return BARE_VALUE_PATTERN.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** One stonith device per node, with the parameters it gets. */
interface FenceDevice {
  id: string;
  node: string;
  agent: string;
  params: [string, string][];
}

/** One IPaddr2 resource. */
interface VipResource {
  id: string;
  vip: VipSpec;
  reader: boolean;
}

/** The model both forms are printed from, so they cannot drift apart. */
interface Plan {
  clone: string;
  resourceParams: [string, string][];
  readerAttribute: string;
  /** Node attribute holding the promotion score (crm_attribute --promotion). */
  promotionAttribute: string;
  vips: VipResource[];
  fencing: FenceDevice[];
  placeholderFencing: boolean;
  stonithEnabled: boolean;
}

function plan(options: ConfigOptions): Plan {
  // Mode and semi-sync are written only when they differ from the agent's defaults (position,
  // off), so the default configuration loads into an agent that does not know them.
  const resourceParams: [string, string][] = [["credentials_file", options.credentialsFile]];
  if (options.mode !== PARAM_DEFAULTS.replicationMode) {
    resourceParams.push([MODE_PARAMETER, options.mode]);
  }
  if (options.semiSync) resourceParams.push([SEMI_SYNC_PARAMETER, "true"]);
  if (options.geo !== undefined) {
    resourceParams.push([BOOTH_TICKET_PARAMETER, options.geo.ticket]);
    if (options.geo.boothConfig !== PARAM_DEFAULTS.boothConfig) {
      resourceParams.push([BOOTH_CONFIG_PARAMETER, options.geo.boothConfig]);
    }
  }
  resourceParams.push(...options.params);
  const readerAttribute = options.params.find(([k]) => k === "reader_attribute")?.[1] ??
    DEFAULT_READER_ATTRIBUTE;
  const vips: VipResource[] = [
    { id: "vip_writer", vip: options.writerVip, reader: false },
    ...options.readerVips.map((vip, i) => ({ id: `vip_reader_${i + 1}`, vip, reader: true })),
  ];
  const placeholderFencing = options.fenceAgent === undefined;
  const fencing: FenceDevice[] = [];
  if (!(options.lab && placeholderFencing)) {
    for (const node of options.nodes) {
      const params: [string, string][] = [["pcmk_host_list", node.name]];
      if (placeholderFencing) {
        params.push(
          ["ip", `CHANGE_ME_bmc_address_of_${node.name}`],
          ["username", "CHANGE_ME"],
          ["password_script", "/CHANGE_ME/print_bmc_password"],
          ["lanplus", "1"],
        );
      } else {
        for (const p of options.fenceParams) {
          if (p.node === undefined || p.node === node.name) params.push([p.key, p.value]);
        }
      }
      fencing.push({
        id: `st_${node.name}`,
        node: node.name,
        agent: options.fenceAgent ?? "fence_ipmilan",
        params,
      });
    }
  }
  return {
    clone: `${options.resource}-clone`,
    resourceParams,
    readerAttribute,
    promotionAttribute: attributeNames(options.resource).promotion,
    vips,
    fencing,
    placeholderFencing,
    stonithEnabled: fencing.length > 0,
  };
}

function vipParams(vip: VipSpec, nic: string | undefined): [string, string][] {
  const params: [string, string][] = [["ip", vip.address]];
  if (vip.prefix !== undefined) params.push(["cidr_netmask", String(vip.prefix)]);
  if (nic !== undefined) params.push(["nic", nic]);
  return params;
}

/** Reader VIP pairs that repel each other: every unordered pair once. */
function readerPairs(vips: VipResource[]): [VipResource, VipResource][] {
  const readers = vips.filter((v) => v.reader);
  const pairs: [VipResource, VipResource][] = [];
  for (let i = 0; i < readers.length; i++) {
    for (let j = i + 1; j < readers.length; j++) pairs.push([readers[j], readers[i]]);
  }
  return pairs;
}

function header(options: ConfigOptions, p: Plan, form: string): string[] {
  const lines = [
    `Pacemaker configuration for ocf:prm:mysql_prm (${form}), written by mysql_prm config.`,
    `Nodes: ${options.nodes.map((n) => `${n.name} (${n.address})`).join(", ")}.`,
    `Replication: ${options.mode === "gtid" ? "GTID" : "binlog file and position"}, semi-sync ${
      options.semiSync ? "on" : "off"
    }.`,
    "",
    "Before loading: corosync must already run on every node with these names, e.g. in",
    "corosync.conf:  nodelist { node { ring0_addr: ADDRESS  name: NAME  nodeid: N } ... }",
    "(one multi-line node block per node), and every node name must resolve to its address",
    "(/etc/hosts) because the agent replicates from the master by its node name:",
    ...options.nodes.map((n) => `    ${n.address}  ${n.name}`),
    `The credentials file ${options.credentialsFile} must exist on every node, mode 0600.`,
  ];
  if (options.nodes.length === 2) {
    lines.push(
      "Two nodes: corosync.conf needs quorum { provider: corosync_votequorum  two_node: 1 },",
      "and fencing is what keeps the two halves of a split from both taking writes.",
    );
  }
  if (options.mode === "gtid") {
    lines.push(
      "GTID mode: MariaDB needs log_slave_updates=ON (gtid_strict_mode=ON recommended);",
      "MySQL needs gtid_mode=ON and enforce_gtid_consistency=ON.",
    );
  }
  if (options.semiSync) {
    lines.push(
      "Semi-sync: MariaDB has it built in; MySQL needs the semisync plugins installed.",
    );
  }
  if (options.geo !== undefined) lines.push("", ...geoHeader(options.geo));
  lines.push("", ...fencingBanner(options, p));
  return lines;
}

function geoHeader(g: GeoSite): string[] {
  return [
    `Two sites: this is site ${g.site}; site ${g.other.site} has its own cluster and its own`,
    `configuration. Booth ticket ${g.ticket} decides which site holds the master: boothd runs`,
    `here as a cluster resource on the site address ${g.boothAddress.address}, reading ${g.boothConfig},`,
    "identical on every node of both sites and on the arbitrator (mysql_prm config prints it).",
    "Node names of both sites must resolve at every node of both sites (the other site's",
    "replicas connect to the master by its node name), and the replication port must be",
    "reachable from the other site: /etc/hosts here also needs",
    ...g.other.nodes.map((n) => `    ${n.address}  ${n.name}`),
    `After loading both sites, once: booth grant -s ADDRESS_OF_THE_FIRST_ACTIVE_SITE ${g.ticket}`,
  ];
}

function geoComment(g: GeoSite, p: Plan): string[] {
  return [
    "Booth: the site address and boothd in one group, so boothd runs where its address is.",
    `Ticket ${g.ticket}: ${p.clone}'s Promoted role only where the ticket is granted. The`,
    "  constraint is also the ordering: nothing is promoted before booth grants the ticket here,",
    "  and when it is revoked or expires (the site lost its peers), loss-policy=demote demotes",
    "  the master, before booth lets the other site acquire it (expire + acquire-after). Without",
    "  the ticket the nodes here stay read-only replicas of the other site's master (readable).",
  ];
}

function fencingBanner(options: ConfigOptions, p: Plan): string[] {
  if (!p.stonithEnabled) {
    return box([
      "LAB CONFIGURATION: FENCING IS DISABLED (stonith-enabled=false).",
      "A node that stops answering can still hold the writer VIP and take writes:",
      "two masters, diverged data. Never use this on a cluster with real data.",
    ]);
  }
  if (p.placeholderFencing) {
    return box([
      "FENCING IS A PLACEHOLDER: EDIT THE st_* DEVICES BELOW BEFORE GOING LIVE.",
      "They are fence_ipmilan devices with CHANGE_ME values: until they can really",
      "power off a node, a node that stops answering cannot be fenced and the",
      "cluster (correctly) waits instead of recovering its resources. Test with:",
      "    stonith_admin --reboot NODE",
      "Or regenerate this file with the fence-agent and fence-param flags.",
    ]);
  }
  return [
    `FENCING: one ${options.fenceAgent} device per node (st_NODE), never run on the node it fences.`,
    "Test every device once before going live: stonith_admin --reboot NODE",
  ];
}

/** Frames lines in exclamation marks, so that the warning cannot be overlooked. */
function box(lines: string[]): string[] {
  const width = Math.max(...lines.map((l) => l.length));
  const rule = "!".repeat(width + 8);
  return [rule, ...lines.map((l) => `!!! ${l.padEnd(width)} !!!`), rule];
}

function opsComment(options: ConfigOptions): string[] {
  const t = OPERATION_TIMEOUTS;
  return [
    `start ${t.start}s: after a crash InnoDB replays its redo log and rolls back open`,
    "  transactions before it accepts connections; on a big buffer pool that takes minutes.",
    `stop ${t.stop}s: a clean shutdown flushes dirty pages; a stop that times out gets the node`,
    "  fenced, so this errs on the long side.",
    `promote ${t.promote}s: the new master first applies every relay log event it received (so no`,
    "  received transaction is lost), then turns read_only off.",
    `demote ${t.demote}s: read_only is set after blocking sessions are killed within a bound.`,
    `notify ${t.notify}s: post-promote repoints replicas and may search the new master's binlogs.`,
    `monitor ${t.monitor}s: a busy server (too many connections, lock waits) is retried inside the`,
    "  operation before it is reported; the two roles use different intervals",
    `  (${seconds(options.monitorPromotedMs)} promoted, ${
      seconds(options.monitorUnpromotedMs)
    } unpromoted) because Pacemaker tells recurring operations apart by interval.`,
  ];
}

function constraintComment(p: Plan): string[] {
  return [
    `Writer VIP: INFINITY colocation with ${p.clone}'s Promoted role, and a Mandatory order`,
    "  promote -> start (symmetrical: the VIP stops before a demote), so clients never write to",
    "  a read-only server.",
    `Reader VIPs: -INFINITY on nodes where ${p.readerAttribute} is undefined or below 1 (the agent`,
    "  sets it to 1 only on a healthy replica or the master and deletes it on stop), and",
    `  ${READER_SCORES.readableNode} on readable nodes (Pacemaker drops a negative colocation that would leave`,
    "  no node at 0 or more, so the readable nodes need a positive base for the next two);",
    `  ${READER_SCORES.awayFromMaster} on the master's node, recognised by its promotion score (${p.promotionAttribute} >= ${PROMOTED_SCORE},`,
    "  the score the agent keeps on the master), and",
    `  ${READER_SCORES.awayFromReader} from each other: finite, so with few readable nodes they share a node rather`,
    "  than go down, and stronger than stickiness (100) so they spread out again when a node",
    "  comes back. Reader VIPs are deliberately not colocated with the writer VIP or the clone:",
    "  Pacemaker would let their preferences weigh in on which node is promoted.",
  ];
}

function commentBlock(lines: string[]): string {
  return lines.map((l) => (l === "" ? "#" : `# ${l}`)).join("\n");
}

/**
 * A comment block for crm shell, which keeps comments as XML comments in the CIB: those may not
 * contain "--" nor end with "-", so such text (a value from the command line) is broken up.
 */
function crmCommentBlock(lines: string[]): string {
  return commentBlock(lines.map((l) => l.replaceAll("--", "- -").replace(/-$/, "- .")));
}

function crmParams(params: [string, string][]): string {
  return params.map(([k, v]) => `${k}=${crmValue(v)}`).join(" ");
}

function generateCrm(options: ConfigOptions, p: Plan): string {
  const out: string[] = [];
  const r = options.resource;
  const t = OPERATION_TIMEOUTS;
  out.push(
    crmCommentBlock([
      ...header(options, p, "crm shell"),
      "",
      "Load with:  crm configure load update THIS_FILE",
    ]),
    "",
  );

  out.push(crmCommentBlock(["Cluster options."]));
  out.push(
    `property cib-bootstrap-options: stonith-enabled=${p.stonithEnabled} no-quorum-policy=stop`,
    "",
  );

  out.push(
    crmCommentBlock([
      "Defaults: a resource stays where it runs unless something better is worth a move;",
      "after 3 failures on a node it leaves that node, and failures are forgotten after 10 min.",
    ]),
    `rsc_defaults rsc-options: ${crmParams(Object.entries(RESOURCE_DEFAULTS))}`,
    `op_defaults op-options: ${crmParams(Object.entries(OP_DEFAULTS))}`,
    "",
  );

  if (p.fencing.length > 0) {
    out.push(crmCommentBlock(["Fencing devices: one per node, kept off the node it fences."]));
    for (const d of p.fencing) {
      out.push(
        `primitive ${d.id} stonith:${d.agent} \\`,
        `  params ${crmParams(d.params)} \\`,
        `  op monitor interval=60s timeout=60s`,
        `location l_${d.id}_not_on_${d.node} ${d.id} -inf: ${d.node}`,
      );
    }
    out.push("");
  }

  out.push(
    crmCommentBlock([
      "The MySQL/MariaDB promotable clone. Operation timeouts:",
      ...opsComment(options),
    ]),
    `primitive ${r} ocf:prm:mysql_prm \\`,
    `  params ${crmParams(p.resourceParams)} \\`,
    `  op start interval=0s timeout=${t.start}s \\`,
    `  op stop interval=0s timeout=${t.stop}s \\`,
    `  op promote interval=0s timeout=${t.promote}s \\`,
    `  op demote interval=0s timeout=${t.demote}s \\`,
    `  op notify interval=0s timeout=${t.notify}s \\`,
    `  op monitor interval=${
      seconds(options.monitorPromotedMs)
    } role=Promoted timeout=${t.monitor}s \\`,
    `  op monitor interval=${
      seconds(options.monitorUnpromotedMs)
    } role=Unpromoted timeout=${t.monitor}s`,
    `clone ${p.clone} ${r} \\`,
    "  meta promotable=true notify=true promoted-max=1 promoted-node-max=1 clone-node-max=1",
    "",
  );

  if (options.geo !== undefined) {
    const g = options.geo;
    out.push(
      crmCommentBlock(geoComment(g, p)),
      `primitive ${BOOTH_IP_ID} ocf:heartbeat:IPaddr2 \\`,
      `  params ${crmParams(vipParams(g.boothAddress, options.vipNic))} \\`,
      "  op monitor interval=10s timeout=20s",
      `primitive ${BOOTH_SITE_ID} ocf:pacemaker:booth-site \\`,
      `  params config=${crmValue(g.boothConfig)} \\`,
      "  op monitor interval=10s timeout=20s",
      `group ${BOOTH_GROUP_ID} ${BOOTH_IP_ID} ${BOOTH_SITE_ID}`,
      `rsc_ticket ${
        ticketConstraintId(options.resource)
      } ${g.ticket}: ${p.clone}:Promoted loss-policy=demote`,
      "",
    );
  }

  out.push(crmCommentBlock(["Virtual IPs and their placement.", ...constraintComment(p)]));
  for (const v of p.vips) {
    out.push(
      `primitive ${v.id} ocf:heartbeat:IPaddr2 \\`,
      `  params ${crmParams(vipParams(v.vip, options.vipNic))} \\`,
      "  op monitor interval=10s timeout=20s",
    );
  }
  out.push(
    `colocation col_vip_writer_on_promoted inf: vip_writer ${p.clone}:Promoted`,
    `order ord_promote_before_vip_writer Mandatory: ${p.clone}:promote vip_writer:start`,
  );
  for (const v of p.vips.filter((x) => x.reader)) {
    out.push(
      `location loc_${v.id}_readable ${v.id} \\`,
      `  rule -inf: not_defined ${p.readerAttribute} or ${p.readerAttribute} number:lt 1`,
      `location loc_${v.id}_prefer_readable ${v.id} \\`,
      `  rule ${READER_SCORES.readableNode}: ${p.readerAttribute} number:gte 1`,
      `location loc_${v.id}_away_from_master ${v.id} \\`,
      `  rule ${READER_SCORES.awayFromMaster}: ${p.promotionAttribute} number:gte ${PROMOTED_SCORE}`,
    );
  }
  for (const [a, b] of readerPairs(p.vips)) {
    out.push(
      `colocation col_${a.id}_away_from_${b.id} ${READER_SCORES.awayFromReader}: ${a.id} ${b.id}`,
    );
  }
  out.push("");
  return out.join("\n");
}

function shParams(params: [string, string][]): string {
  return params.map(([k, v]) => shWord(`${k}=${v}`)).join(" ");
}

function generatePcs(options: ConfigOptions, p: Plan): string {
  const out: string[] = [];
  const r = options.resource;
  const t = OPERATION_TIMEOUTS;
  const pcs = 'pcs -f "$CIB"';
  out.push(
    "#!/bin/sh",
    commentBlock([
      ...header(options, p, "pcs"),
      "",
      "Usage: sh THIS_FILE [CIB_FILE]",
      "Without CIB_FILE (or when it does not exist yet) it copies the live CIB into it, edits the",
      "copy with pcs -f, then replaces the live configuration with it in one step (cibadmin",
      "--replace --scope configuration: the status section stays the cluster's), so the cluster",
      "never acts on half a configuration. Changes made to the configuration by others between the",
      "copy and the push are lost, so do not edit it meanwhile. With PRM_PUSH=no it only edits",
      "CIB_FILE (review it, or check it offline with crm_verify -x CIB_FILE).",
    ]),
    "set -eu",
    'CIB="${1:-$(mktemp /tmp/prm-cib.XXXXXX)}"',
    'if [ ! -s "$CIB" ]; then cibadmin --query >"$CIB"; fi',
    "",
  );

  out.push(commentBlock(["Cluster options."]));
  out.push(
    `${pcs} property set stonith-enabled=${p.stonithEnabled} no-quorum-policy=stop`,
    "",
  );
  out.push(
    commentBlock([
      "Defaults: a resource stays where it runs unless something better is worth a move;",
      "after 3 failures on a node it leaves that node, and failures are forgotten after 10 min.",
    ]),
    `${pcs} resource defaults update ${shParams(Object.entries(RESOURCE_DEFAULTS))}`,
    `${pcs} resource op defaults update ${shParams(Object.entries(OP_DEFAULTS))}`,
    "",
  );

  if (p.fencing.length > 0) {
    out.push(commentBlock(["Fencing devices: one per node, kept off the node it fences."]));
    for (const d of p.fencing) {
      out.push(
        `${pcs} stonith create ${d.id} ${d.agent} ${
          shParams(d.params)
        } op monitor interval=60s timeout=60s`,
        `${pcs} constraint location ${d.id} avoids ${d.node}`,
      );
    }
    out.push("");
  }

  out.push(
    commentBlock([
      "The MySQL/MariaDB promotable clone. Operation timeouts:",
      ...opsComment(options),
    ]),
    `${pcs} resource create ${r} ocf:prm:mysql_prm --no-default-ops \\`,
    `  ${shParams(p.resourceParams)} \\`,
    `  op start interval=0s timeout=${t.start}s \\`,
    `  stop interval=0s timeout=${t.stop}s \\`,
    `  promote interval=0s timeout=${t.promote}s \\`,
    `  demote interval=0s timeout=${t.demote}s \\`,
    `  notify interval=0s timeout=${t.notify}s \\`,
    `  monitor interval=${
      seconds(options.monitorPromotedMs)
    } role=Promoted timeout=${t.monitor}s \\`,
    `  monitor interval=${
      seconds(options.monitorUnpromotedMs)
    } role=Unpromoted timeout=${t.monitor}s \\`,
    "  promotable notify=true promoted-max=1 promoted-node-max=1 clone-node-max=1",
    "",
  );

  if (options.geo !== undefined) {
    const g = options.geo;
    out.push(
      commentBlock(geoComment(g, p)),
      `${pcs} resource create ${BOOTH_IP_ID} ocf:heartbeat:IPaddr2 --no-default-ops ${
        shParams(vipParams(g.boothAddress, options.vipNic))
      } op monitor interval=10s timeout=20s --group ${BOOTH_GROUP_ID}`,
      `${pcs} resource create ${BOOTH_SITE_ID} ocf:pacemaker:booth-site --no-default-ops ${
        shParams([["config", g.boothConfig]])
      } op monitor interval=10s timeout=20s --group ${BOOTH_GROUP_ID}`,
      `${pcs} constraint ticket add ${g.ticket} Promoted ${p.clone} loss-policy=demote id=${
        ticketConstraintId(options.resource)
      }`,
      "",
    );
  }

  out.push(commentBlock(["Virtual IPs and their placement.", ...constraintComment(p)]));
  for (const v of p.vips) {
    out.push(
      `${pcs} resource create ${v.id} ocf:heartbeat:IPaddr2 --no-default-ops ${
        shParams(vipParams(v.vip, options.vipNic))
      } op monitor interval=10s timeout=20s`,
    );
  }
  out.push(
    `${pcs} constraint colocation add vip_writer with Promoted ${p.clone} score=INFINITY id=col_vip_writer_on_promoted`,
    `${pcs} constraint order promote ${p.clone} then start vip_writer kind=Mandatory id=ord_promote_before_vip_writer`,
  );
  for (const v of p.vips.filter((x) => x.reader)) {
    out.push(
      `${pcs} constraint location ${v.id} rule id=loc_${v.id}_readable-rule constraint-id=loc_${v.id}_readable score=-INFINITY \\`,
      `  not_defined ${p.readerAttribute} or ${p.readerAttribute} lt number 1`,
      `${pcs} constraint location ${v.id} rule id=loc_${v.id}_prefer_readable-rule constraint-id=loc_${v.id}_prefer_readable score=${READER_SCORES.readableNode} \\`,
      `  ${p.readerAttribute} gte number 1`,
      `${pcs} constraint location ${v.id} rule id=loc_${v.id}_away_from_master-rule constraint-id=loc_${v.id}_away_from_master score=${READER_SCORES.awayFromMaster} \\`,
      `  ${p.promotionAttribute} gte number ${PROMOTED_SCORE}`,
    );
  }
  for (const [a, b] of readerPairs(p.vips)) {
    out.push(
      `${pcs} constraint colocation add ${a.id} with ${b.id} score=${READER_SCORES.awayFromReader} id=col_${a.id}_away_from_${b.id}`,
    );
  }
  out.push(
    "",
    commentBlock([
      "Check the result, then replace the live CIB with it in one step. crm_verify also fails on",
      "warnings; read them, and push anyway with PRM_FORCE=yes only if they are understood.",
    ]),
    'if ! crm_verify --xml-file "$CIB" && [ "${PRM_FORCE:-no}" != yes ]; then',
    '  echo "crm_verify found problems in $CIB (above): not pushed" >&2',
    "  exit 1",
    "fi",
    'if [ "${PRM_PUSH:-yes}" != no ]; then',
    '  cibadmin --replace --scope configuration --xml-file "$CIB"',
    '  echo "Configuration pushed from $CIB"',
    "fi",
    "",
  );
  return out.join("\n");
}

/** Id of the booth group (the site address, then boothd). */
export const BOOTH_GROUP_ID = "g_booth";
/** Id of the booth site address (IPaddr2). */
export const BOOTH_IP_ID = "booth_ip";
/** Id of boothd (ocf:pacemaker:booth-site). */
export const BOOTH_SITE_ID = "booth_site";

/** Id of the rsc_ticket constraint on the promoted role. */
export function ticketConstraintId(resource: string): string {
  return `tkt_${resource}_promoted`;
}

/** Generates both forms of the configuration from validated options. */
export function generateConfig(options: ConfigOptions): GeneratedConfig {
  const p = plan(options);
  return { crm: generateCrm(options, p), pcs: generatePcs(options, p) };
}

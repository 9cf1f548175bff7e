/**
 * Loading a MySQL agent under test into the lab cluster: a promotable clone with notify=true, two
 * monitors (one per role), a writer VIP that follows the promoted role and reader VIPs kept on
 * readable nodes.
 *
 * @module
 */

import { crmMon, firstRunningNode, waitFor } from "./cluster.ts";
import { credentials, exec, NET_PREFIX, STATE_DIR, WRITER_VIP } from "./nodes.ts";
import { xmlEscape } from "./xml.ts";

/** Which agent: a short name or a full `class:provider:type`. */
export type AgentName = "heartbeat" | "prm" | string;

/** Options of {@linkcode loadAgent}. */
export interface LoadAgentOptions {
  /** "heartbeat" (ocf:heartbeat:mysql), "prm" (ocf:prm:mysql_prm) or "ocf:P:T" (default heartbeat). */
  agent?: AgentName;
  /** Instance parameters, merged over {@linkcode agentParams} of the agent. */
  params?: Record<string, string>;
  /** Primitive id (default "p_mysql"). */
  id?: string;
  /** Clone id (default "ms_mysql"). */
  cloneId?: string;
  /** Monitor interval of the promoted role in ms (default 2000). */
  promotedMonitorMs?: number;
  /** Monitor interval of the unpromoted role in ms (default 3000; must differ). */
  unpromotedMonitorMs?: number;
  /** Operation timeouts in seconds (defaults: start/stop/promote/demote 120, notify 90, monitor 30). */
  timeouts?: Partial<
    Record<"start" | "stop" | "promote" | "demote" | "notify" | "monitor", number>
  >;
  /** Extra clone meta attributes (e.g. { "resource-stickiness": "1" }). */
  cloneMeta?: Record<string, string>;
  /** Writer VIP address, or null for none (default 10.213.7.100). */
  writerVip?: string | null;
  /** Reader VIPs: a count (10.213.7.101, .102, ...) or the addresses (default none). */
  readerVips?: number | string[];
  /** Node attribute that says a replica is readable (default "readable"). */
  readerAttribute?: string;
  /** Node where cibadmin runs (default: the first running node). */
  node?: string;
}

/** The `class:provider:type` of an agent name. */
export function agentSpec(agent: AgentName): { provider: string; type: string } {
  if (agent === "heartbeat") return { provider: "heartbeat", type: "mysql" };
  if (agent === "prm") return { provider: "prm", type: "mysql_prm" };
  const m = /^ocf:([^:]+):([^:]+)$/.exec(agent);
  if (!m) throw new Error(`Unknown agent "${agent}": use heartbeat, prm or ocf:PROVIDER:TYPE`);
  return { provider: m[1], type: m[2] };
}

/**
 * Parameters that fit the lab for an agent. The upstream agent gets mariadbd as binary (not
 * mysqld_safe, which would restart a killed server) and the admin login as replication login
 * (it runs SET GLOBAL read_only and STOP SLAVE with it); ours reads its logins
 * from /etc/mysql/prm.cnf.
 */
export function agentParams(agent: AgentName): Record<string, string> {
  const common = {
    config: "/etc/mysql/my.cnf",
    datadir: "/var/lib/mysql",
    pid: "/run/mysqld/mysqld.pid",
    socket: "/run/mysqld/mysqld.sock",
    log: "/var/log/mysql/error.log",
    user: "mysql",
    group: "mysql",
  };
  const { provider, type } = agentSpec(agent);
  if (provider === "heartbeat" && type === "mysql") {
    const c = credentials();
    return {
      ...common,
      binary: "/usr/sbin/mariadbd",
      client_binary: "/usr/bin/mariadb",
      // The upstream agent also runs its admin statements (read_only, STOP SLAVE) as this login.
      replication_user: c.admin.user,
      replication_passwd: c.admin.password,
    };
  }
  // Any build of ours (ocf:prm:mysql_prm, or a side install under another provider to compare).
  if (type === "mysql_prm") return { ...common, credentials_file: "/etc/mysql/prm.cnf" };
  return common;
}

function nv(prefix: string, params: Record<string, string>): string {
  return Object.entries(params).map(([k, v]) =>
    `<nvpair id="${xmlEscape(`${prefix}-${k}`)}" name="${xmlEscape(k)}" value="${xmlEscape(v)}"/>`
  ).join("");
}

/** The addresses of the reader VIPs an option asks for. */
export function readerVipAddresses(opt: number | string[] | undefined): string[] {
  if (opt === undefined) return [];
  if (Array.isArray(opt)) return opt;
  return Array.from({ length: opt }, (_, i) => `${NET_PREFIX}.${101 + i}`);
}

/** The resources and constraints XML of {@linkcode loadAgent} (pure; exported for tests). */
export function agentXml(
  opts: LoadAgentOptions & { params: Record<string, string>; clones: number },
): { resources: string; constraints: string } {
  const id = opts.id ?? "p_mysql";
  const cloneId = opts.cloneId ?? "ms_mysql";
  const { provider, type } = agentSpec(opts.agent ?? "heartbeat");
  const pm = opts.promotedMonitorMs ?? 2000;
  const um = opts.unpromotedMonitorMs ?? 3000;
  if (pm === um) throw new Error("The two monitor intervals must differ");
  const t = { start: 120, stop: 120, promote: 120, demote: 120, notify: 90, monitor: 30 };
  Object.assign(t, opts.timeouts ?? {});
  const meta = {
    "promotable": "true",
    "notify": "true",
    "promoted-max": "1",
    "promoted-node-max": "1",
    "clone-max": String(opts.clones),
    "clone-node-max": "1",
    "interleave": "true",
    ...(opts.cloneMeta ?? {}),
  };
  const op = (name: string, extra = "") =>
    `<op id="${id}-${name}" name="${name}" interval="0s" timeout="${
      t[name as keyof typeof t]
    }s"${extra}/>`;
  const resources: string[] = [
    `<clone id="${cloneId}"><meta_attributes id="${cloneId}-meta">${nv(cloneId, meta)}` +
    `</meta_attributes><primitive id="${id}" class="ocf" provider="${xmlEscape(provider)}" ` +
    `type="${xmlEscape(type)}"><instance_attributes id="${id}-ia">${nv(id, opts.params)}` +
    `</instance_attributes><operations>` +
    `<op id="${id}-monitor-promoted" name="monitor" interval="${pm}ms" role="Promoted" ` +
    `timeout="${t.monitor}s"/>` +
    `<op id="${id}-monitor-unpromoted" name="monitor" interval="${um}ms" role="Unpromoted" ` +
    `timeout="${t.monitor}s"/>` +
    op("start") + op("stop") + op("promote") + op("demote") + op("notify") +
    `</operations></primitive></clone>`,
  ];
  const constraints: string[] = [];
  const vip = (vid: string, addr: string) =>
    `<primitive id="${vid}" class="ocf" provider="heartbeat" type="IPaddr2">` +
    `<instance_attributes id="${vid}-ia">${
      nv(vid, { ip: addr, cidr_netmask: "24", nic: "eth0" })
    }</instance_attributes><operations><op id="${vid}-monitor" name="monitor" interval="5s" ` +
    `timeout="20s"/></operations></primitive>`;
  const writer = opts.writerVip === undefined ? WRITER_VIP : opts.writerVip;
  if (writer) {
    resources.push(vip("vip_writer", writer));
    constraints.push(
      `<rsc_colocation id="col_writer" score="INFINITY" rsc="vip_writer" with-rsc="${cloneId}" ` +
        `with-rsc-role="Promoted"/>`,
      `<rsc_order id="ord_writer" kind="Mandatory" first="${cloneId}" first-action="promote" ` +
        `then="vip_writer" then-action="start"/>`,
    );
  }
  const attr = xmlEscape(opts.readerAttribute ?? "readable");
  readerVipAddresses(opts.readerVips).forEach((addr, i) => {
    const vid = `vip_reader${i + 1}`;
    resources.push(vip(vid, addr));
    constraints.push(
      `<rsc_location id="loc_${vid}" rsc="${vid}"><rule id="loc_${vid}-rule" score="-INFINITY" ` +
        `boolean-op="or"><expression id="loc_${vid}-lt" attribute="${attr}" operation="lt" ` +
        `value="1" type="number"/><expression id="loc_${vid}-undef" attribute="${attr}" ` +
        `operation="not_defined"/></rule></rsc_location>`,
      `<rsc_colocation id="col_${vid}" score="INFINITY" rsc="${vid}" with-rsc="${cloneId}"/>`,
    );
    // Spread the readers: each one avoids the previous one's node when it can.
    if (i > 0) {
      constraints.push(
        `<rsc_colocation id="col_${vid}_spread" score="-100" rsc="${vid}" ` +
          `with-rsc="vip_reader${i}"/>`,
      );
    }
  });
  return { resources: resources.join(""), constraints: constraints.join("") };
}

/**
 * Loads an agent as a promotable clone (plus VIPs) into the running cluster, atomically (one CIB
 * replace of the configuration section). Returns the clone id. Does not wait for convergence.
 */
export async function loadAgent(opts: LoadAgentOptions = {}): Promise<string> {
  const node = opts.node ?? firstRunningNode();
  if (!node) throw new Error("No lab node is running");
  const mon = await crmMon(node);
  const params = { ...agentParams(opts.agent ?? "heartbeat"), ...(opts.params ?? {}) };
  const xml = agentXml({ ...opts, params, clones: mon.nodes.length });
  const q = await exec(node, ["cibadmin", "--query", "--scope", "configuration"], {
    check: true,
    timeoutMs: 15_000,
  });
  let conf = q.stdout;
  conf = conf.includes("<resources/>")
    ? conf.replace("<resources/>", `<resources>${xml.resources}</resources>`)
    : conf.replace("</resources>", `${xml.resources}</resources>`);
  conf = conf.includes("<constraints/>")
    ? conf.replace("<constraints/>", `<constraints>${xml.constraints}</constraints>`)
    : conf.replace("</constraints>", `${xml.constraints}</constraints>`);
  const r = await exec(
    node,
    ["cibadmin", "--replace", "--scope", "configuration", "--xml-pipe"],
    { stdin: conf, timeoutMs: 30_000 },
  );
  if (r.code !== 0) throw new Error(`Loading the agent failed: ${r.stderr.trim()}`);
  return opts.cloneId ?? "ms_mysql";
}

/** Options of {@linkcode unloadAgent}. */
export interface UnloadAgentOptions {
  /** Clone id (default "ms_mysql"). */
  cloneId?: string;
  /** Deadline for everything to stop, in ms (default 120000). */
  timeoutMs?: number;
}

/**
 * Stops the clone and the VIPs (target-role Stopped, waits until stopped), then removes them and
 * their constraints from the CIB.
 */
export async function unloadAgent(opts: UnloadAgentOptions = {}): Promise<void> {
  const cloneId = opts.cloneId ?? "ms_mysql";
  const node = firstRunningNode();
  if (!node) throw new Error("No lab node is running");
  const mon = await crmMon(node);
  const ids = new Set<string>();
  for (const r of mon.resources) {
    if (r.parent === cloneId) ids.add(cloneId);
    else if (/^vip_(writer|reader\d+)$/.test(r.id)) ids.add(r.id);
  }
  for (const id of ids) {
    await exec(node, ["crm_resource", "-r", id, "--meta", "-p", "target-role", "-v", "Stopped"], {
      check: true,
      timeoutMs: 15_000,
    });
  }
  await waitFor(async () => {
    const m = await crmMon(node);
    return m.resources.every((r) =>
      !(r.parent === cloneId || ids.has(r.id)) || r.role === "Stopped" || r.nodes.length === 0
    );
  }, { timeoutMs: opts.timeoutMs ?? 120_000, what: "the agent's resources stopped" });
  const q = await exec(node, ["cibadmin", "--query", "--scope", "configuration"], {
    check: true,
    timeoutMs: 15_000,
  });
  let conf = q.stdout;
  conf = conf.replace(new RegExp(`<clone id="${cloneId}"[\\s\\S]*?</clone>`), "");
  conf = conf.replace(/<primitive id="vip_(?:writer|reader\d+)"[\s\S]*?<\/primitive>/g, "");
  conf = conf.replace(
    /<rsc_(?:colocation|order|location) id="(?:col|ord|loc)_(?:writer|vip_reader\d+)[^"]*"(?:[^>]*\/>|[\s\S]*?<\/rsc_location>)/g,
    "",
  );
  const r = await exec(
    node,
    ["cibadmin", "--replace", "--scope", "configuration", "--xml-pipe"],
    { stdin: conf, timeoutMs: 30_000 },
  );
  if (r.code !== 0) throw new Error(`Unloading the agent failed: ${r.stderr.trim()}`);
  await exec(node, ["crm_resource", "--cleanup"], { timeoutMs: 30_000 });
}

/**
 * The `mysql_prm config` flags every lab configuration shares: VIPs on eth0, the lab's
 * credentials file, the lab's monitor intervals (2 s / 3 s), the agent's lab parameters, and one
 * fence device per node driving the lab's fence loop.
 */
export function labConfigFlags(): string[] {
  const params = agentParams("prm");
  delete params.credentials_file;
  return [
    "--vip-nic",
    "eth0",
    "--credentials-file",
    "/etc/mysql/prm.cnf",
    "--monitor-interval-promoted",
    "2s",
    "--monitor-interval-unpromoted",
    "3s",
    ...Object.entries(params).flatMap(([k, v]) => ["--param", `${k}=${v}`]),
    "--fence-agent",
    "fence_prm_lab",
    "--fence-param",
    `request_dir=${STATE_DIR}/fence`,
  ];
}

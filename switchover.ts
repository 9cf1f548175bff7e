/**
 * `mysql_prm switchover [--to NODE] [--timeout DURATION]`: a planned move of the master, with no
 * acknowledged write lost and writes blocked as briefly as Pacemaker allows.
 *
 * 1. **Checks** ({@link planSwitchover}, pure), each refusal with a typed code and a sentence:
 *    a promotable clone that Pacemaker manages, quorum, fencing on with a fence device, no failed
 *    action of the resource, no move or ban already pending, exactly one promoted node; the target
 *    (given, or the best candidate: highest score, then least lag) online, unpromoted, a
 *    promotion candidate by the agent's own word (score set, no not-promotable reason), both
 *    replication threads running from the master, lag within `--max-lag`, and no transaction the
 *    master does not hold (GTID comparison).
 * 2. **The move**, through Pacemaker: `crm_resource --move --promoted` with a lifetime (so a
 *    constraint left behind by an interrupted command expires), cleared as soon as the new master
 *    is promoted and followed. The agent does the rest: demote makes the old master read-only and
 *    publishes where it stopped writing; every replica (the promotee first) receives up to there
 *    before the election; the promotee applies its relay log and publishes its coordinates
 *    before it opens writes; the old master then follows it after checking that its own last
 *    transactions are in the new master's binary log (so nothing it acknowledged is lost).
 * 3. **A timeline** measured from this node (each node's MySQL polled every 50 ms, crm_mon every
 *    300 ms): when the old master went read-only, when the target became writable (the writes
 *    blocked at the database), when Pacemaker showed the promotion, when the resources that
 *    follow the promoted role (writer VIPs) stopped and started (the writes blocked for clients of
 *    the VIP), when every replica followed, when the constraint was cleared.
 *
 * @module
 */

import { sleep } from "./timer.ts";
import { parseFlags } from "./cli_args.ts";
import { runTool, TOOL_MAX_MS, type ToolRunner } from "./cib.ts";
import type { ClusterView } from "./cluster_view.ts";
import { errantGtidText } from "./gtid.ts";
import { describeError, MysqlClient } from "./mysql.ts";
import { findAll, parseXml } from "./pcmk_xml.ts";
import { collectCluster, parseAddresses, type StatusReport, type StatusRow } from "./status.ts";

/** Why a switchover is refused, as a value. */
export type RefusalCode =
  | "not-promotable-clone"
  | "unmanaged"
  | "no-quorum"
  | "no-fencing"
  | "failed-actions"
  | "move-pending"
  | "no-master"
  | "unknown-target"
  | "target-is-master"
  | "target-unavailable"
  | "target-not-candidate"
  | "target-not-replicating"
  | "target-lagging"
  | "target-errant"
  | "no-candidate";

/** One reason not to switch over. */
export interface Refusal {
  /** Typed reason. */
  code: RefusalCode;
  /** What is wrong and what to do. */
  message: string;
}

/** Who moves where, and why that target. */
export interface SwitchoverPlan {
  /** The promoted node now. */
  from: string;
  /** The node to promote. */
  to: string;
  /** Why this target (asked for, or the best candidate and its figures). */
  why: string;
}

/** Options of {@link planSwitchover}. */
export interface PlanOptions {
  /** The target node; default: the best candidate. */
  to?: string;
  /** The most a target may lag, in seconds ("caught up or nearly"). */
  maxLagSeconds: number;
}

/** The checks' answer: a plan, or every refusal found. */
export type PlanResult = { ok: true; plan: SwitchoverPlan } | { ok: false; refusals: Refusal[] };

/** Why `row` cannot be the target of a switchover away from `master` (empty when it can). */
export function targetRefusals(
  row: StatusRow,
  master: StatusRow,
  options: Pick<PlanOptions, "maxLagSeconds">,
): Refusal[] {
  const out: Refusal[] = [];
  const n = row.node;
  if (row.state !== "online") {
    out.push({ code: "target-unavailable", message: `${n} is ${row.state}` });
    return out;
  }
  if (row.role !== "unpromoted") {
    out.push({ code: "target-unavailable", message: `${n}'s instance is ${row.role}` });
    return out;
  }
  if (row.notPromotable !== undefined || row.score === undefined || row.score <= 0) {
    out.push({
      code: "target-not-candidate",
      message: `${n} is not a promotion candidate (${
        row.notPromotable ?? `score ${row.score ?? "unset"}`
      })`,
    });
  }
  if (row.masterHost !== master.node || row.ioRunning !== "Yes" || row.sqlRunning !== true) {
    out.push({
      code: "target-not-replicating",
      message: `${n} does not replicate from ${master.node} with both threads running (${
        row.replication || "not a replica"
      })`,
    });
  } else if (row.lag === undefined || row.lag > options.maxLagSeconds) {
    out.push({
      code: "target-lagging",
      message: `${n} lags ${
        row.lag === undefined ? "an unknown time" : `${row.lag} s`
      } (most ${options.maxLagSeconds} s: wait, or raise --max-lag)`,
    });
  }
  if (row.gtid !== "" && master.gtid !== "" && row.flavour !== undefined) {
    const errant = errantGtidText(row.gtid, master.gtid, row.flavour);
    if (errant !== undefined && errant !== "") {
      out.push({
        code: "target-errant",
        message: `${n} holds transactions ${master.node} never had (GTIDs ${errant})`,
      });
    }
  }
  return out;
}

/**
 * The checks of a switchover (see the module comment); pure.
 *
 * @example
 * ```ts
 * const r = planSwitchover(view, report, { maxLagSeconds: 5 });
 * if (!r.ok) for (const x of r.refusals) console.error(`${x.code}: ${x.message}`);
 * ```
 */
export function planSwitchover(
  view: ClusterView,
  report: StatusReport,
  options: PlanOptions,
): PlanResult {
  const refusals: Refusal[] = [];
  if (!view.promotable) {
    refusals.push({
      code: "not-promotable-clone",
      message: `${view.resource} is not a promotable clone: nothing to switch over`,
    });
  }
  if (!view.managed) {
    refusals.push({
      code: "unmanaged",
      message: "Pacemaker does not manage the resource now (maintenance or is-managed=false)",
    });
  }
  if (!view.quorum) refusals.push({ code: "no-quorum", message: "this partition has no quorum" });
  if (!view.stonithEnabled || view.fenceDevices.length === 0) {
    refusals.push({
      code: "no-fencing",
      message: view.stonithEnabled
        ? "stonith-enabled is true but no fence device is configured"
        : "fencing is off (stonith-enabled=false): a switchover is refused without it",
    });
  }
  const failed = view.nodes.filter((n) => n.failures.length > 0);
  if (failed.length > 0) {
    refusals.push({
      code: "failed-actions",
      message: `failed actions of ${view.resource} on ${
        failed.map((n) => `${n.name} (${n.failures[0].op})`).join(", ")
      }: look at them, then crm_resource --cleanup`,
    });
  }
  if (view.moveConstraints.length > 0) {
    refusals.push({
      code: "move-pending",
      message: `a move or ban is already in place (${
        view.moveConstraints.join(", ")
      }): crm_resource --clear -r ${view.clone ?? view.resource} first`,
    });
  }
  const masters = report.rows.filter((r) => r.role === "promoted");
  if (masters.length !== 1) {
    refusals.push({
      code: "no-master",
      message: masters.length === 0
        ? "no node is promoted"
        : `${masters.length} nodes are promoted (${masters.map((m) => m.node).join(", ")})`,
    });
    return { ok: false, refusals };
  }
  const master = masters[0];
  let target: StatusRow | undefined;
  let why: string;
  if (options.to !== undefined) {
    target = report.rows.find((r) => r.node === options.to);
    if (target === undefined) {
      refusals.push({
        code: "unknown-target",
        message: `${options.to} is not a node of this cluster (${
          report.rows.map((r) => r.node).join(", ")
        })`,
      });
      return { ok: false, refusals };
    }
    if (target.node === master.node) {
      refusals.push({ code: "target-is-master", message: `${target.node} is the master already` });
      return { ok: false, refusals };
    }
    refusals.push(...targetRefusals(target, master, options));
    why = "asked for with --to";
  } else {
    const eligible = report.rows.filter((r) =>
      r.node !== master.node && targetRefusals(r, master, options).length === 0
    ).sort((a, b) =>
      (b.score ?? 0) - (a.score ?? 0) || (a.lag ?? 0) - (b.lag ?? 0) ||
      a.node.localeCompare(b.node)
    );
    target = eligible[0];
    if (target === undefined) {
      const why = report.rows.filter((r) => r.node !== master.node).flatMap((r) =>
        targetRefusals(r, master, options).map((x) => x.message)
      );
      refusals.push({
        code: "no-candidate",
        message: `no node can take over: ${why.join("; ") || "no other node"}`,
      });
      return { ok: false, refusals };
    }
    why = `the best candidate: score ${target.score}, lag ${target.lag} s${
      eligible.length > 1 ? ` (of ${eligible.map((e) => e.node).join(", ")})` : ""
    }`;
  }
  if (refusals.length > 0) return { ok: false, refusals };
  return { ok: true, plan: { from: master.node, to: target.node, why } };
}

/** One moment of the switchover, relative to the move request. */
export interface TimelineEvent {
  /** Milliseconds after the move was requested. */
  atMs: number;
  /** What happened. */
  what: string;
}

/** What a switchover did. */
export interface SwitchoverResult {
  /** True when the target is promoted, writable and followed, and the constraint cleared. */
  ok: boolean;
  /** The plan carried out. */
  plan: SwitchoverPlan;
  /** Events in order. */
  timeline: TimelineEvent[];
  /** Old master read-only → target writable (ms), when both were seen. */
  blockedAtDatabaseMs?: number;
  /** A follower of the promoted role (writer VIP) stopped → started on the target (ms). */
  blockedAtVipMs?: Record<string, number>;
  /** The old master's binary log position when it went read-only. */
  finalPosition?: string;
  /** Why it is not ok. */
  problem?: string;
}

/** Options of {@link runSwitchover}. */
export interface RunOptions {
  /** Pacemaker's view and the report of a fresh {@link collectCluster}. */
  view: ClusterView;
  /** The plan to carry out. */
  plan: SwitchoverPlan;
  /** Every node's MySQL login. */
  login: { user: string; password: string };
  /** MySQL port. */
  port: number;
  /** Node → address (default: the node name). */
  addresses?: Record<string, string>;
  /** The most the whole switchover may take, in ms. */
  timeoutMs: number;
  /** Pacemaker tool runner (tests). */
  runner?: ToolRunner;
  /** Progress lines (default: none). */
  progress?: (line: string) => void;
}

/** A polled connection to one node's MySQL (reconnects after a failure, never throws). */
class Poller {
  #client?: MysqlClient;
  constructor(
    readonly node: string,
    private readonly opts: { host: string; port: number; user: string; password: string },
  ) {}

  async #get(): Promise<MysqlClient | undefined> {
    if (this.#client !== undefined) return this.#client;
    try {
      this.#client = await MysqlClient.connect({
        ...this.opts,
        connectTimeoutMs: 1_000,
        queryTimeoutMs: 1_000,
      });
      return this.#client;
    } catch {
      return undefined;
    }
  }

  async use<T>(fn: (c: MysqlClient) => Promise<T>): Promise<T | undefined> {
    const c = await this.#get();
    if (c === undefined) return undefined;
    try {
      return await fn(c);
    } catch {
      await c.close();
      this.#client = undefined;
      return undefined;
    }
  }

  async close(): Promise<void> {
    await this.#client?.close();
    this.#client = undefined;
  }
}

/** Seconds as an ISO 8601 duration, as crm_resource --lifetime takes it. */
function isoSeconds(ms: number): string {
  return `PT${Math.max(1, Math.ceil(ms / 1000))}S`;
}

/**
 * Carries out a planned switchover (see the module comment) and measures it.
 *
 * @example
 * ```ts
 * const { view, report, login, params } = await collectCluster();
 * const r = planSwitchover(view, report, { maxLagSeconds: 5 });
 * if (r.ok) await runSwitchover({ view, plan: r.plan, login, port: params.replicationPort, timeoutMs: 120_000 });
 * ```
 */
export async function runSwitchover(options: RunOptions): Promise<SwitchoverResult> {
  const { view, plan } = options;
  const tool = options.runner ?? runTool;
  const target = view.clone ?? view.resource;
  const timeline: TimelineEvent[] = [];
  const t0 = Date.now();
  const note = (what: string) => {
    const e = { atMs: Date.now() - t0, what };
    timeline.push(e);
    options.progress?.(`+${(e.atMs / 1000).toFixed(3)} s  ${what}`);
  };
  const deadline = t0 + options.timeoutMs;
  const others = view.nodes.filter((n) => n.online && n.name !== plan.to).map((n) => n.name);
  const pollers = new Map(
    [plan.from, plan.to, ...others].map((n) => [
      n,
      new Poller(n, {
        host: options.addresses?.[n] ?? n,
        port: options.port,
        user: options.login.user,
        password: options.login.password,
      }),
    ]),
  );
  // Connections first: the poll must not spend the first moments of the move connecting.
  await Promise.all([...pollers.values()].map((p) => p.use((c) => c.readOnly())));
  const result: SwitchoverResult = { ok: false, plan, timeline };
  const moved = await tool("crm_resource", [
    "--move",
    "--promoted",
    "-r",
    target,
    "-N",
    plan.to,
    "--lifetime",
    isoSeconds(options.timeoutMs),
  ], TOOL_MAX_MS);
  if (moved.code !== 0) {
    for (const p of pollers.values()) await p.close();
    return { ...result, problem: `crm_resource --move failed: ${moved.stderr || moved.stdout}` };
  }
  note(`move requested: crm_resource --move --promoted -r ${target} -N ${plan.to}`);
  let readOnlyAt: number | undefined;
  let writableAt: number | undefined;
  let promotedSeen = false;
  let followed = false;
  const vipStop: Record<string, number> = {};
  const vipStart: Record<string, number> = {};
  const followers = view.followersOfPromoted;
  let stop = false;
  const pcmk = (async () => {
    while (!stop && Date.now() < deadline) {
      const r = await tool("crm_mon", ["-1", "-r", "--output-as=xml"], TOOL_MAX_MS);
      if (r.code === 0) {
        const mon = parseXml(r.stdout);
        for (const res of findAll(mon, "resource")) {
          const id = res.attrs.id.replace(/:\d+$/, "");
          const on = res.children.filter((c) => c.name === "node").map((c) => c.attrs.name);
          if (id === view.resource && /^(Promoted|Master)$/.test(res.attrs.role ?? "")) {
            if (on.includes(plan.to) && !promotedSeen) {
              promotedSeen = true;
              note(`Pacemaker shows ${plan.to} promoted`);
            }
          }
          if (followers.includes(id)) {
            if (!on.includes(plan.from) && vipStop[id] === undefined) {
              vipStop[id] = Date.now();
              note(`${id} stopped on ${plan.from}`);
            }
            if (on.includes(plan.to) && vipStart[id] === undefined) {
              vipStart[id] = Date.now();
              note(`${id} started on ${plan.to}`);
            }
          }
        }
      }
      await sleep(300);
    }
  })();
  try {
    while (Date.now() < deadline) {
      if (readOnlyAt === undefined) {
        const ro = await pollers.get(plan.from)!.use(async (c) => {
          if (!(await c.readOnly())) return undefined;
          const b = await c.binlogStatus();
          return b ? `${b.file}:${b.pos}` : "";
        });
        if (ro !== undefined) {
          readOnlyAt = Date.now();
          result.finalPosition = ro || undefined;
          note(`${plan.from} read-only: writes blocked${ro ? ` (its binary log at ${ro})` : ""}`);
        }
      }
      if (writableAt === undefined) {
        const ro = await pollers.get(plan.to)!.use((c) => c.readOnly());
        if (ro === false) {
          writableAt = Date.now();
          note(`${plan.to} writable: writes open again`);
        }
      } else if (!followed) {
        const states = await Promise.all(
          others.map((n) =>
            pollers.get(n)!.use(async (c) => {
              const s = await c.replicaStatus();
              return s !== undefined && s.masterHost === plan.to && s.ioRunning === "Yes" &&
                s.sqlRunning;
            })
          ),
        );
        if (states.every((x) => x === true)) {
          followed = true;
          note(
            `every other node replicates from ${plan.to}: ${others.join(", ") || "(none)"}${
              others.includes(plan.from)
                ? ` (${plan.from}'s last transactions were found in ${plan.to}'s binary log)`
                : ""
            }`,
          );
        }
      }
      const vipsDone = followers.every((f) => vipStart[f] !== undefined);
      if (writableAt !== undefined && followed && promotedSeen && vipsDone) break;
      await sleep(50);
    }
  } finally {
    stop = true;
    await pcmk;
    for (const p of pollers.values()) await p.close();
    const cleared = await tool("crm_resource", ["--clear", "-r", target], TOOL_MAX_MS);
    if (cleared.code === 0) note(`constraint cleared (crm_resource --clear -r ${target})`);
    else note(`crm_resource --clear failed: ${cleared.stderr || cleared.stdout}`);
  }
  if (readOnlyAt !== undefined && writableAt !== undefined) {
    result.blockedAtDatabaseMs = writableAt - readOnlyAt;
  }
  const vip: Record<string, number> = {};
  for (const f of followers) {
    if (vipStop[f] !== undefined && vipStart[f] !== undefined) vip[f] = vipStart[f] - vipStop[f];
  }
  if (followers.length > 0) result.blockedAtVipMs = vip;
  const missing = [
    writableAt === undefined ? `${plan.to} never became writable` : "",
    !promotedSeen ? `Pacemaker never showed ${plan.to} promoted` : "",
    !followed ? "not every node follows the new master" : "",
    ...followers.filter((f) => vipStart[f] === undefined).map((f) => `${f} not on ${plan.to}`),
  ].filter((x) => x !== "");
  if (missing.length > 0) {
    return {
      ...result,
      problem: `not finished within ${Math.round(options.timeoutMs / 1000)} s: ${
        missing.join("; ")
      }`,
    };
  }
  return { ...result, ok: true };
}

/** Parses a DURATION (`90`, `90s`, `1500ms`, `2m`) into ms; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,7})(ms|s|m)?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const ms = m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000;
  return ms > 0 ? ms : undefined;
}

/** Renders the result for people. */
export function renderSwitchover(result: SwitchoverResult): string {
  const lines = [
    `Switchover ${result.plan.from} -> ${result.plan.to} (${result.plan.why}): ${
      result.ok ? "done" : `FAILED: ${result.problem}`
    }`,
  ];
  for (const e of result.timeline) {
    lines.push(`  +${(e.atMs / 1000).toFixed(3).padStart(7)} s  ${e.what}`);
  }
  if (result.blockedAtDatabaseMs !== undefined) {
    lines.push(
      `Writes blocked at the database: ${
        (result.blockedAtDatabaseMs / 1000).toFixed(3)
      } s (${result.plan.from} read-only -> ${result.plan.to} writable)`,
    );
  }
  for (const [id, ms] of Object.entries(result.blockedAtVipMs ?? {})) {
    lines.push(`Writes blocked through ${id}: ${(ms / 1000).toFixed(3)} s (seen every 300 ms)`);
  }
  return lines.join("\n");
}

/** Text of `mysql_prm switchover --help`. */
export const SWITCHOVER_HELP =
  `Usage: mysql_prm switchover [--to NODE] [--timeout DURATION] [--max-lag SECONDS]
                            [--dry-run] [--json] [--resource ID]
                            [--credentials-file PATH] [--address NODE=ADDRESS]...

Moves the master (the promoted instance of the mysql_prm clone) to another node, with no
acknowledged write lost, and prints a timeline. Run it as root on any cluster node.

Checks first, and refuses with the reason (exit 3) unless: Pacemaker manages the resource (no
maintenance), the partition has quorum, fencing is on with a fence device, no failed action of
the resource is recorded, no move or ban is pending, one node is promoted, and the target is
online, a promotion candidate (score set, no not-promotable reason), replicating from the master
with both threads, within --max-lag, and holds no transaction the master lacks (GTIDs).

Then moves the role through Pacemaker (crm_resource --move --promoted with a lifetime of
--timeout, cleared as soon as the target is promoted and followed) and reports when the old
master went read-only, when the target became writable, when the resources colocated with the
promoted role (writer VIPs) moved, and when every replica followed.

Options:
  --to NODE              The node to promote (default: the best candidate: highest promotion
                         score, then least lag).
  --timeout DURATION     The most the switchover may take: 90, 90s, 1500ms, 2m (default 120s).
                         Past it the constraint is cleared and the command fails (exit 1).
  --max-lag SECONDS      The most the target may lag (default 5).
  --dry-run              Run the checks and say what would happen; move nothing.
  --json                 Print the plan or the result as JSON.
  -r, --resource ID      The mysql_prm primitive (default: the first one in the CIB).
  --credentials-file P   Use this file instead of the resource's credentials_file.
  --address NODE=ADDR    Reach NODE's MySQL at ADDR (repeatable).
  -h, --help             This text.

Exit status: 0 switched over (or --dry-run found no obstacle), 1 the move failed or did not
finish in time, 2 usage error (bad option or value, unknown --to node), 3 refused by a check.
`;

/** Entry point of `mysql_prm switchover ARGS...`; returns the exit status. */
export async function switchoverMain(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseFlags(args, {
      options: {
        to: { type: "string" },
        timeout: { type: "string" },
        "max-lag": { type: "string" },
        "dry-run": { type: "boolean" },
        json: { type: "boolean" },
        resource: { type: "string", short: "r" },
        "credentials-file": { type: "string" },
        address: { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: false,
    }));
  } catch (err) {
    console.error(`${(err as Error).message} (see mysql_prm switchover --help)`);
    return 2;
  }
  if (values.help) {
    console.log(SWITCHOVER_HELP);
    return 0;
  }
  const timeoutMs = values.timeout === undefined ? 120_000 : parseDuration(values.timeout);
  if (timeoutMs === undefined) {
    console.error(`--timeout takes a duration such as 90s or 2m, not "${values.timeout}"`);
    return 2;
  }
  const maxLag = values["max-lag"] === undefined ? 5 : Number(values["max-lag"]);
  if (!Number.isInteger(maxLag) || maxLag < 0) {
    console.error(`--max-lag takes whole seconds, not "${values["max-lag"]}"`);
    return 2;
  }
  if (values.to !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/.test(values.to)) {
    console.error(`--to takes a node name, not "${values.to}"`);
    return 2;
  }
  const addresses = parseAddresses(values.address);
  if (typeof addresses === "string") {
    console.error(addresses);
    return 2;
  }
  const print = (what: unknown, text: string) =>
    console.log(values.json ? JSON.stringify(what, null, 2) : text);
  try {
    const reading = await collectCluster({
      resource: values.resource,
      credentialsFile: values["credentials-file"],
      addresses,
    });
    const planned = planSwitchover(reading.view, reading.report, {
      to: values.to,
      maxLagSeconds: maxLag,
    });
    if (!planned.ok) {
      const unknown = planned.refusals.find((r) => r.code === "unknown-target");
      if (unknown !== undefined) {
        console.error(`mysql_prm switchover: ${unknown.message}`);
        return 2;
      }
      print(
        { ok: false, refusals: planned.refusals },
        ["Switchover refused:", ...planned.refusals.map((r) => `  ${r.code}: ${r.message}`)].join(
          "\n",
        ),
      );
      return 3;
    }
    if (values["dry-run"]) {
      print(
        { ok: true, dryRun: true, plan: planned.plan },
        `Would switch over ${planned.plan.from} -> ${planned.plan.to} (${planned.plan.why}); every check passed`,
      );
      return 0;
    }
    const result = await runSwitchover({
      view: reading.view,
      plan: planned.plan,
      login: reading.login,
      port: reading.params.replicationPort,
      addresses,
      timeoutMs,
      progress: values.json ? undefined : (line) => console.error(line),
    });
    print(result, renderSwitchover(result));
    return result.ok ? 0 : 1;
  } catch (err) {
    console.error(`mysql_prm switchover: ${describeError(err)}`);
    return 1;
  }
}

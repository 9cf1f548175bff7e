/**
 * The agent under test, without the lab: a temporary directory (trusted_dir.ts) holding a my.cnf (own port, socket,
 * pid file, datadir that the agent creates with enable_creation), a credentials file, the OCF
 * environment, optionally fake Pacemaker tools (fake_pacemaker.ts), and a runner that runs
 * `deno run agent.ts ACTION` the way pacemaker-execd runs an agent (a clean environment) and
 * returns what can be asserted on: the exit code, stdout, the stderr lines, the exit reason and
 * every attribute the fakes hold. Plus small helpers for the servers beside it (replication
 * coordinates, waiting on a condition).
 *
 * Tests assert on codes, attributes and data; log lines are for failure messages.
 *
 * @module
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import { codeName, readContext } from "../ocf.ts";
import { processAlive, readPidFile } from "../mysqld.ts";
import { type AttributeNames, attributeNames, REPL_INFO_SET } from "../attrs.ts";
import { type LocalState, statePath } from "../run.ts";
import {
  type AttributeSnapshot,
  FakePacemaker,
  type FakePacemakerOptions,
} from "./fake_pacemaker.ts";
import { freePort } from "./mariadb_server.ts";
import { trustedTempDir } from "./trusted_dir.ts";

/** The agent program the tests run (the source, as `deno run -A agent.ts`). */
export const AGENT_SOURCE: string = new URL("../agent.ts", import.meta.url).pathname;

/** The PATH pacemaker-execd gives agents. */
export const AGENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Meta attributes of instance 0 of a promotable clone. */
export const CLONE_META: Readonly<Record<string, string>> = {
  OCF_RESKEY_CRM_meta_promotable: "true",
  OCF_RESKEY_CRM_meta_clone: "0",
  OCF_RESKEY_CRM_meta_notify: "true",
  OCF_RESKEY_CRM_meta_promoted_max: "1",
};

/** A MySQL login. */
export interface Login {
  /** User name. */
  user: string;
  /** Password. */
  password: string;
}

/** What one run of the agent did. */
export interface AgentResult {
  /** The arguments (the action first). */
  args: string[];
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error (the agent's log lines and exit reason). */
  stderr: string;
  /** Standard error, one line each. */
  lines: string[];
  /** The `ocf-exit-reason:` text, when the agent wrote one (the last one). */
  exitReason?: string;
  /** Wall time in ms. */
  ms: number;
  /** True when the run outlived its abort limit and was killed. */
  aborted: boolean;
  /** Every attribute after the run, when fake Pacemaker tools are in use. */
  attributes?: AttributeSnapshot;
}

/** Options of {@link runAgent}. */
export interface RunAgentOptions {
  /** The whole environment (the agent gets nothing else). */
  env: Record<string, string>;
  /** Kill the agent after this many ms (a hung action fails the test). Default 120 000. */
  abortMs?: number;
}

/**
 * Runs the agent program with `args` in exactly `env`, as pacemaker-execd runs an agent.
 *
 * @example
 * ```ts
 * const r = await runAgent(["meta-data"], { env: { PATH: AGENT_PATH } });
 * console.assert(r.code === 0 && r.stdout.includes("<resource-agent"));
 * ```
 */
export async function runAgent(args: string[], options: RunAgentOptions): Promise<AgentResult> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", AGENT_SOURCE, ...args],
    env: options.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.abortMs ?? 120_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  const lines = stderr.split("\n").filter((l) => l !== "");
  const reasons = lines.filter((l) => l.startsWith("ocf-exit-reason:"));
  return {
    args,
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr,
    lines,
    exitReason: reasons.length ? reasons[reasons.length - 1].slice(16) : undefined,
    ms: Math.round(performance.now() - t0),
    aborted: out.signal !== null,
  };
}

/** A failure message showing what the agent said (and held, with fake tools). */
export function describeRun(r: AgentResult): string {
  const attrs = r.attributes ? `\nattributes: ${JSON.stringify(r.attributes)}` : "";
  return `${r.args.join(" ")} -> ${codeName(r.code)}${r.aborted ? " (aborted)" : ""} in ` +
    `${r.ms} ms\n${r.stderr}${attrs}`;
}

/** Asserts the exit code, printing the agent's lines when it differs. */
export function assertCode(r: AgentResult, code: number): void {
  assert.equal(r.code, code, describeRun(r));
}

/** Writes an executable launcher for the agent source (what an installed agent would be). */
export async function writeLauncher(path: string): Promise<string> {
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\nexec ${Deno.execPath()} run -A --quiet ${AGENT_SOURCE} "$@"\n`,
    { mode: 0o755 },
  );
  await Deno.chmod(path, 0o755);
  return path;
}

/** Options of {@link AgentSetup.create}. */
export interface AgentSetupOptions {
  /** OCF_RESOURCE_INSTANCE. Default "p_mysql". */
  resource?: string;
  /** server_id in my.cnf. Default 11. */
  serverId?: number;
  /** More `[mysqld]` lines of my.cnf. */
  myCnf?: string[];
  /** The agent's admin login ([client]). Default prm_admin with a random password. */
  client?: Login;
  /** The replication login ([replication]); false leaves it out. Default repl, random password. */
  replication?: Login | false;
  /** Run as instance 0 of a promotable clone ({@link CLONE_META} in every run). */
  clone?: boolean;
  /**
   * Fake Pacemaker tools (and OCF_RESKEY_CRM_meta_on_node naming the fake local node). Without,
   * the agent runs the host's real tools, which fail outside a cluster.
   */
  pacemaker?: boolean | FakePacemakerOptions;
  /** More resource parameters (name without OCF_RESKEY_ → value). */
  params?: Record<string, string>;
  /** OCF_RESKEY_CRM_meta_timeout in ms. Default 60 000. */
  timeoutMs?: number;
  /** Prefix of the temporary directory's name. */
  prefix?: string;
}

/** The notification lists of a notify action (node names). */
export interface NotifyLists {
  /** Instances being started. */
  start?: string[];
  /** Instances being stopped. */
  stop?: string[];
  /** Instances being promoted. */
  promote?: string[];
  /** Instances being demoted. */
  demote?: string[];
  /** Active instances. */
  active?: string[];
  /** Inactive instances. */
  inactive?: string[];
  /** Promoted instances. */
  promoted?: string[];
  /** Unpromoted instances. */
  unpromoted?: string[];
  /** All instances. */
  all?: string[];
}

const NOTIFY_LISTS: (keyof NotifyLists)[] = [
  "start",
  "stop",
  "promote",
  "demote",
  "active",
  "inactive",
  "promoted",
  "unpromoted",
  "all",
];

/** The agent's private attributes (attrd only), by their attrs.ts names. */
export type PrivateAttribute = "position" | "final" | "refused" | "gtid" | "gtidFork";

function optionValue(text: string): string {
  return `"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** An SQL connection target: a {@link AgentSetup} or a MariadbServer. */
export interface SqlTarget {
  /** Runs SQL and returns the rows. */
  query<T = Record<string, unknown>[]>(sql: string, values?: unknown[]): Promise<T>;
}

/**
 * One agent instance on this host: its files, its environment, its runs.
 *
 * @example
 * ```ts
 * await using s = await AgentSetup.create({ clone: true, pacemaker: true });
 * assertCode(await s.run("start"), OCF.SUCCESS);
 * console.assert(s.score() === 10 && await s.readOnly() === 1);
 * ```
 */
export class AgentSetup {
  /** The temporary directory. */
  readonly dir: string;
  /** OCF_RESOURCE_INSTANCE. */
  readonly resource: string;
  /** The server's TCP port (127.0.0.1). */
  readonly port: number;
  /** The agent's admin login. */
  readonly client: Login;
  /** The replication login, if any. */
  readonly replication?: Login;
  /** The fake Pacemaker, when in use. */
  readonly pacemaker?: FakePacemaker;
  /** The environment of every run (before per-run additions). */
  readonly env: Record<string, string>;
  /** Every run so far (for checks across all of them, such as secrets in logs). */
  readonly results: AgentResult[] = [];
  readonly #pids = new Set<number>();

  private constructor(init: {
    dir: string;
    resource: string;
    port: number;
    client: Login;
    replication?: Login;
    pacemaker?: FakePacemaker;
    env: Record<string, string>;
  }) {
    this.dir = init.dir;
    this.resource = init.resource;
    this.port = init.port;
    this.client = init.client;
    this.replication = init.replication;
    this.pacemaker = init.pacemaker;
    this.env = init.env;
  }

  /** Every name the resource uses in the cluster (attrs.ts). */
  get names(): AttributeNames {
    return attributeNames(this.resource, this.env.OCF_RESKEY_reader_attribute);
  }

  /** Writes my.cnf and the credentials file and builds the environment (no server yet). */
  static async create(options: AgentSetupOptions = {}): Promise<AgentSetup> {
    // Root-owned (the agent refuses a state folder another user could have made); 0755 so that
    // the server, running as mysql, reaches its files below.
    const dir = trustedTempDir(options.prefix ?? "prm-agent-", 0o755);
    let pacemaker: FakePacemaker | undefined;
    try {
      const port = freePort();
      const resource = options.resource ?? "p_mysql";
      const client = options.client ?? { user: "prm_admin", password: crypto.randomUUID() };
      const replication = options.replication === false
        ? undefined
        : options.replication ?? { user: "repl", password: crypto.randomUUID() };
      await Deno.writeTextFile(
        `${dir}/my.cnf`,
        [
          "[mysqld]",
          `server_id = ${options.serverId ?? 11}`,
          "log_bin = mysql-bin",
          "innodb_buffer_pool_size = 32M",
          `port = ${port}`,
          "bind-address = 127.0.0.1",
          "skip-name-resolve",
          "performance_schema = OFF",
          ...(options.myCnf ?? []),
          "",
        ].join("\n"),
      );
      const creds = [
        `[client]`,
        `user = ${client.user}`,
        `password = ${optionValue(client.password)}`,
      ];
      if (replication) {
        creds.push(
          "[replication]",
          `user = ${replication.user}`,
          `password = ${optionValue(replication.password)}`,
        );
      }
      await Deno.writeTextFile(`${dir}/creds.cnf`, creds.join("\n") + "\n", { mode: 0o600 });
      await Deno.chmod(`${dir}/creds.cnf`, 0o600);
      const env: Record<string, string> = {
        PATH: AGENT_PATH,
        OCF_ROOT: "/usr/lib/ocf",
        OCF_RESOURCE_INSTANCE: resource,
        OCF_RESKEY_CRM_meta_timeout: String(options.timeoutMs ?? 60_000),
        HA_RSCTMP: `${dir}/state`,
        ...(options.clone ? CLONE_META : {}),
      };
      if (options.pacemaker) {
        pacemaker = await FakePacemaker.create({
          baseDir: dir,
          ...(options.pacemaker === true ? {} : options.pacemaker),
        });
        Object.assign(env, pacemaker.env(), { OCF_RESKEY_CRM_meta_on_node: pacemaker.node });
      }
      const setup = new AgentSetup({ dir, resource, port, client, replication, pacemaker, env });
      for (const [k, v] of Object.entries({ ...setup.params(), ...options.params })) {
        env[`OCF_RESKEY_${k}`] = v;
      }
      return setup;
    } catch (err) {
      await pacemaker?.cleanup();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw err;
    }
  }

  /** Path of my.cnf. */
  get config(): string {
    return `${this.dir}/my.cnf`;
  }

  /** Path of the credentials file. */
  get credentialsFile(): string {
    return `${this.dir}/creds.cnf`;
  }

  /** The datadir (created by the agent's first start). */
  get datadir(): string {
    return `${this.dir}/data`;
  }

  /** The server's pid file. */
  get pidFile(): string {
    return `${this.dir}/run/mysqld.pid`;
  }

  /** The server's socket. */
  get socket(): string {
    return `${this.dir}/run/mysqld.sock`;
  }

  /** The agent's state directory (HA_RSCTMP). */
  get stateDir(): string {
    return `${this.dir}/state`;
  }

  /** The file layout as resource parameters (name → value), as for ocf-tester's -o. */
  params(): Record<string, string> {
    return {
      config: this.config,
      datadir: this.datadir,
      pid: this.pidFile,
      socket: this.socket,
      log: `${this.dir}/log/error.log`,
      enable_creation: "true",
      credentials_file: this.credentialsFile,
    };
  }

  /**
   * Runs one action with the set-up's environment plus `extra`, and records the result. The run is
   * killed 30 s after its own operation timeout.
   */
  async run(action: string, extra: Record<string, string> = {}): Promise<AgentResult> {
    const env = { ...this.env, ...extra };
    const timeout = Number(env.OCF_RESKEY_CRM_meta_timeout ?? 20_000);
    const r = await runAgent([action], { env, abortMs: timeout + 30_000 });
    if (this.pacemaker) r.attributes = this.pacemaker.snapshot();
    this.results.push(r);
    this.serverPid();
    return r;
  }

  /** The environment of a notification (every list set, as Pacemaker sets them). */
  notify(type: "pre" | "post", operation: string, lists: NotifyLists = {}): Record<string, string> {
    const p = "OCF_RESKEY_CRM_meta_notify_";
    const env: Record<string, string> = { [`${p}type`]: type, [`${p}operation`]: operation };
    for (const name of NOTIFY_LISTS) {
      const unames = lists[name] ?? [];
      env[`${p}${name}_uname`] = unames.join(" ");
      env[`${p}${name}_resource`] = unames.map((_, i) => `${this.resource}:${i}`).join(" ");
    }
    return env;
  }

  // -- The server ------------------------------------------------------------------------------

  /** The pid in the server's pid file (remembered, so that cleanup ends it). */
  serverPid(): number | undefined {
    const pid = readPidFile(this.pidFile);
    if (pid !== undefined) this.#pids.add(pid);
    return pid;
  }

  /** A new connection with the agent's admin login over the socket; the caller ends it. */
  connect(): Promise<mysql.Connection> {
    return mysql.createConnection({
      socketPath: this.socket,
      user: this.client.user,
      password: this.client.password,
      supportBigNumbers: true,
      bigNumberStrings: true,
    });
  }

  /** Runs SQL on a fresh connection and returns the rows (an empty list for a statement). */
  async query<T = Record<string, unknown>[]>(sql: string, values?: unknown[]): Promise<T> {
    const c = await this.connect();
    try {
      const [rows] = await c.query(sql, values);
      return (Array.isArray(rows) ? rows : []) as T;
    } finally {
      await c.end();
    }
  }

  /** @@global.read_only (0 or 1). */
  async readOnly(): Promise<number> {
    const [row] = await this.query<{ ro: string | number }[]>("SELECT @@global.read_only AS ro");
    return Number(row.ro);
  }

  /** The agent's state file (run.ts's), as the last action left it ({} when none). */
  agentState(): LocalState {
    try {
      return JSON.parse(
        Deno.readTextFileSync(statePath({ ctx: readContext(this.env) }, "state.json")),
      ) as LocalState;
    } catch {
      return {};
    }
  }

  /** Writes the agent's state file (run.ts's) as an earlier action would have left it. */
  writeAgentState(state: LocalState): void {
    Deno.mkdirSync(this.stateDir, { recursive: true });
    Deno.writeTextFileSync(
      statePath({ ctx: readContext(this.env) }, "state.json"),
      JSON.stringify(state),
    );
  }

  // -- Attributes (with fake Pacemaker tools) ---------------------------------------------------

  /** The fake Pacemaker (throws when the set-up runs the real tools). */
  get cluster(): FakePacemaker {
    if (!this.pacemaker) throw new Error("This set-up has no fake Pacemaker tools");
    return this.pacemaker;
  }

  /** The promotion score of this resource on `node` (default: this node). */
  score(node?: string): number | undefined {
    const v = this.cluster.nodeAttribute(this.names.promotion, node);
    return v === undefined ? undefined : Number(v);
  }

  /** Sets (undefined: deletes) the promotion score on `node`, as the cluster would hold it. */
  setScore(score: number | undefined, node?: string): void {
    this.cluster.setNodeAttribute(
      this.names.promotion,
      score === undefined ? undefined : String(score),
      node,
    );
  }

  /** The reader attribute on `node` (default: this node). */
  readable(node?: string): string | undefined {
    return this.cluster.nodeAttribute(this.names.reader, node);
  }

  /** The published master (`<resource>_REPL_INFO`), raw. */
  replInfo(): string | undefined {
    return this.cluster.property(this.names.replInfo, REPL_INFO_SET);
  }

  /** Publishes a `<resource>_REPL_INFO` value, as another node would. */
  setReplInfo(value: string | undefined): void {
    this.cluster.setProperty(this.names.replInfo, value, REPL_INFO_SET);
  }

  /** One of the agent's private attributes on `node` (default: this node). */
  privateAttribute(kind: PrivateAttribute, node?: string): string | undefined {
    return this.cluster.privateAttribute(this.names[kind], node);
  }

  /** Sets one of the agent's private attributes on `node`, as that node would. */
  setPrivateAttribute(kind: PrivateAttribute, value: string | undefined, node?: string): void {
    this.cluster.setPrivateAttribute(this.names[kind], value, node);
  }

  // -- Cleanup ----------------------------------------------------------------------------------

  /** Kills every server this set-up saw (by pid), ends the fakes, removes the directory. */
  async cleanup(): Promise<void> {
    this.serverPid();
    await killAndWait([...this.#pids]);
    await this.pacemaker?.cleanup();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /** Same as {@link cleanup}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.cleanup();
  }
}

/** SIGKILLs the running ones of `pids` (stopped ones too) and waits up to 10 s for them to go. */
export async function killAndWait(pids: number[]): Promise<void> {
  for (const pid of pids.filter((p) => processAlive(p))) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
  }
  await waitFor("killed processes to exit", () => !pids.some((p) => processAlive(p)), {
    timeoutMs: 10_000,
  }).catch(() => {});
}

// -- Servers beside the agent -------------------------------------------------------------------

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** Deadline in ms. Default 60 000. */
  timeoutMs?: number;
  /** Pause between checks in ms. Default 100. */
  intervalMs?: number;
}

/**
 * Waits until `check` holds (a check that throws counts as not yet); throws on the deadline with
 * the last error, so that a failure says what it saw.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  options: WaitOptions = {},
): Promise<void> {
  const until = Date.now() + (options.timeoutMs ?? 60_000);
  let last: unknown;
  while (true) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) {
      throw new Error(
        `Timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}

/** Binary log coordinates. */
export interface Coordinates {
  /** File name. */
  file: string;
  /** Position. */
  pos: number;
}

/** SHOW MASTER STATUS of a server. */
export async function binlogPosition(s: SqlTarget): Promise<Coordinates> {
  const [row] = await s.query<{ File: string; Position: string | number }[]>("SHOW MASTER STATUS");
  if (!row) throw new Error("Binary logging is off");
  return { file: row.File, pos: Number(row.Position) };
}

/** SHOW SLAVE STATUS of a server (empty when it replicates from nobody). */
export async function replicaStatus(s: SqlTarget): Promise<Record<string, unknown>> {
  const rows = await s.query<Record<string, unknown>[]>("SHOW SLAVE STATUS");
  return rows[0] ?? {};
}

/** Where {@link pointAt} points a replica. */
export interface ReplicationSource extends Coordinates {
  /** Host. Default 127.0.0.1. */
  host?: string;
  /** Port. */
  port: number;
  /** Replication login. */
  login: Login;
  /** MASTER_CONNECT_RETRY in seconds, when given. */
  connectRetry?: number;
  /** START SLAVE afterwards. Default true. */
  start?: boolean;
}

/** CHANGE MASTER TO `source` by coordinates (no GTID), then START SLAVE (unless told not to). */
export async function pointAt(replica: SqlTarget, source: ReplicationSource): Promise<void> {
  await replica.query(
    "CHANGE MASTER TO MASTER_HOST=?, MASTER_PORT=?, MASTER_USER=?, MASTER_PASSWORD=?, " +
      `MASTER_LOG_FILE=?, MASTER_LOG_POS=?, MASTER_USE_GTID=no${
        source.connectRetry ? `, MASTER_CONNECT_RETRY=${Math.trunc(source.connectRetry)}` : ""
      }`,
    [
      source.host ?? "127.0.0.1",
      source.port,
      source.login.user,
      source.login.password,
      source.file,
      source.pos,
    ],
  );
  if (source.start ?? true) await replica.query("START SLAVE");
}

/** Waits until `replica`'s IO thread received exactly up to `master`'s current position. */
export async function waitReceived(
  replica: SqlTarget,
  master: SqlTarget,
  options: WaitOptions = {},
): Promise<void> {
  const target = await binlogPosition(master);
  let seen: Record<string, unknown> = {};
  await waitFor(`a replica to receive ${target.file}:${target.pos}`, async () => {
    seen = await replicaStatus(replica);
    return seen.Master_Log_File === target.file && Number(seen.Read_Master_Log_Pos) === target.pos;
  }, options).catch((err) => {
    throw new Error(
      `${(err as Error).message} (at ${seen.Master_Log_File}:${seen.Read_Master_Log_Pos}, ` +
        `io=${seen.Slave_IO_Running} ${seen.Last_IO_Error ?? ""})`,
    );
  });
}

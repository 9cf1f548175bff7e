/**
 * Throwaway MariaDB servers for tests and benchmarks.
 *
 * Each server gets its own temporary directory (datadir, socket, pid file, error log), listens on
 * 127.0.0.1 on a free port, and is started by running `mariadbd --no-defaults` directly (never
 * mysqld_safe) so that the test owns the process and can end it by PID.
 *
 * @module
 */
import mysql from "mysql2/promise";
import { createReadStream } from "node:fs";

/** Options for {@link startMariadb}. Every field has a test-friendly default. */
export interface MariadbServerOptions {
  /** server_id; must differ between servers that replicate. Default 1. */
  serverId?: number;
  /** log_bin basename inside the datadir, or false for no binary log. Default "mysql-bin". */
  logBin?: string | false;
  /** Global binlog_format. Default "MIXED". */
  binlogFormat?: "ROW" | "STATEMENT" | "MIXED";
  /** binlog_checksum. Default "CRC32". */
  binlogChecksum?: "CRC32" | "NONE";
  /** log_slave_updates. Default false. */
  logSlaveUpdates?: boolean;
  /** relay_log basename inside the datadir. Default "relay-bin". Relay logs are kept (relay_log_purge=0). */
  relayLog?: string;
  /** max_binlog_size in bytes. Default 1 GiB. */
  maxBinlogSize?: number;
  /** max_relay_log_size in bytes; 0 means "same as max_binlog_size". Default 0. */
  maxRelayLogSize?: number;
  /** innodb_buffer_pool_size. Default "64M". */
  innodbBufferPoolSize?: string;
  /** max_allowed_packet in bytes. Default 256 MiB. */
  maxAllowedPacket?: number;
  /** secure_file_priv directory. Default: the server's own temp directory. */
  secureFilePriv?: string;
  /** TCP port; default: a free port picked by the OS. */
  port?: number;
  /** Parent directory of the server's temp directory. Default: the system temp dir. */
  baseDir?: string;
  /** Extra mariadbd command line arguments. */
  extraArgs?: string[];
  /** How long to wait for the server to accept connections. Default 60 000 ms. */
  startTimeoutMs?: number;
  /** Keep the temp directory when the server is stopped (for debugging). Default false. */
  keepDir?: boolean;
}

/** Options for {@link MariadbServer.stop}. */
export interface StopOptions {
  /** How long to wait after SIGTERM before SIGKILL. Default 60 000 ms. */
  timeoutMs?: number;
  /** Keep the temp directory (overrides the start option). */
  keepDir?: boolean;
}

/** Options for {@link setupReplication}. */
export interface ReplicationOptions {
  /** Replication user created on the master. Default "repl". */
  user?: string;
  /** Its password (set with ALTER USER when given). Default: the master's replicationPassword. */
  password?: string;
  /** Master log file to start from. Default: the master's first binary log. */
  masterLogFile?: string;
  /** Master log position to start from. Default 4. */
  masterLogPos?: number;
}

/** Options for {@link waitForCatchUp}. */
export interface CatchUpOptions {
  /** Deadline in ms. Default 120 000. */
  timeoutMs?: number;
  /**
   * Fail at once on an IO thread error (default true). Set false when the master may be briefly
   * unreachable and the IO thread is expected to reconnect.
   */
  ioErrorIsFatal?: boolean;
}

/** A running throwaway MariaDB server. */
export class MariadbServer {
  /** The temp directory holding everything this server writes. */
  readonly dir: string;
  /** The datadir (binary logs and relay logs are written here). */
  readonly datadir: string;
  /** Unix socket path. */
  readonly socket: string;
  /** TCP port on 127.0.0.1. */
  readonly port: number;
  /** server_id. */
  readonly serverId: number;
  /** log_bin basename or false. */
  readonly logBin: string | false;
  /** relay_log basename. */
  readonly relayLog: string;
  /** Path of the error log. */
  readonly errorLog: string;
  /** Random password {@link setupReplication} gives the replication user on this server. */
  readonly replicationPassword: string = crypto.randomUUID();
  #child: Deno.ChildProcess;
  #exited = false;
  #status: Promise<Deno.CommandStatus>;
  #keepDir: boolean;
  #connection: mysql.Connection | undefined;

  /** Use {@link startMariadb}. */
  constructor(
    child: Deno.ChildProcess,
    init: {
      dir: string;
      port: number;
      serverId: number;
      logBin: string | false;
      relayLog: string;
      keepDir: boolean;
    },
  ) {
    this.#child = child;
    this.dir = init.dir;
    this.datadir = `${init.dir}/data`;
    this.socket = `${init.dir}/mysqld.sock`;
    this.errorLog = `${init.dir}/error.log`;
    this.port = init.port;
    this.serverId = init.serverId;
    this.logBin = init.logBin;
    this.relayLog = init.relayLog;
    this.#keepDir = init.keepDir;
    this.#status = child.status.then((s) => {
      this.#exited = true;
      return s;
    });
  }

  /** PID of the mariadbd process. */
  get pid(): number {
    return this.#child.pid;
  }

  /** True once the mariadbd process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Opens a new root connection over the Unix socket. The caller must end() it. */
  connect(options: { database?: string } = {}): Promise<mysql.Connection> {
    return mysql.createConnection({
      socketPath: this.socket,
      user: "root",
      database: options.database,
      multipleStatements: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      // LOAD DATA LOCAL reads the client-side file through this factory.
      infileStreamFactory: (path: string) => createReadStream(path),
    });
  }

  /** Runs SQL on a shared root connection and returns the rows (or the result header). */
  async query<T = Record<string, unknown>[]>(sql: string, values?: unknown[]): Promise<T> {
    if (!this.#connection) this.#connection = await this.connect();
    const [rows] = await this.#connection.query(sql, values);
    return rows as T;
  }

  /** Absolute paths of the server's binary logs, in index order. */
  binlogFiles(): string[] {
    if (this.logBin === false) return [];
    return this.#readIndex(`${this.datadir}/${this.logBin}.index`);
  }

  /** Absolute paths of the server's relay logs, in index order. */
  relayLogFiles(): string[] {
    return this.#readIndex(`${this.datadir}/${this.relayLog}.index`);
  }

  /** The last `lines` lines of the error log (for failure messages). */
  errorLogTail(lines = 30): string {
    try {
      return Deno.readTextFileSync(this.errorLog).trimEnd().split("\n").slice(-lines).join("\n");
    } catch (e) {
      return `(no error log: ${e instanceof Error ? e.message : e})`;
    }
  }

  /**
   * Stops the server: SIGTERM, wait up to the deadline, then SIGKILL. Removes the temp directory
   * unless asked to keep it. Safe to call more than once.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    if (this.#connection) {
      const c = this.#connection;
      this.#connection = undefined;
      await c.end().catch(() => c.destroy());
    }
    if (!this.#exited) {
      try {
        this.#child.kill("SIGTERM");
      } catch {
        // Already gone between the check and the kill.
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await Promise.race([
        this.#status.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        try {
          this.#child.kill("SIGKILL");
        } catch {
          // Exited just now.
        }
      }
    }
    await this.#status;
    if (!(options.keepDir ?? this.#keepDir)) {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }

  /** Waits for the process to exit (used by {@link startMariadb} to detect early death). */
  get status(): Promise<Deno.CommandStatus> {
    return this.#status;
  }

  #readIndex(path: string): string[] {
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
    return text.split("\n").filter((l) => l.trim() !== "").map((l) => {
      const name = l.trim();
      return name.startsWith("/") ? name : `${this.datadir}/${name.replace(/^\.\//, "")}`;
    });
  }
}

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(
      `${cmd} failed (exit ${out.code}): ${text.trim().split("\n").slice(-10).join("\n")}`,
    );
  }
  return text;
}

/**
 * Creates a datadir with mariadb-install-db and starts `mariadbd --no-defaults` on 127.0.0.1.
 * Resolves once the server accepts connections; rejects (and cleans up) when the server dies or
 * the deadline passes, with the tail of its error log in the message.
 */
export async function startMariadb(options: MariadbServerOptions = {}): Promise<MariadbServer> {
  const dir = await Deno.makeTempDir({ dir: options.baseDir, prefix: "prm-mariadb-" });
  const datadir = `${dir}/data`;
  const serverId = options.serverId ?? 1;
  const logBin = options.logBin ?? "mysql-bin";
  const relayLog = options.relayLog ?? "relay-bin";
  const port = options.port ?? freePort();
  try {
    await run("mariadb-install-db", [
      "--no-defaults",
      `--datadir=${datadir}`,
      "--user=root",
      "--auth-root-authentication-method=normal",
      "--skip-test-db",
      "--skip-name-resolve",
      // Bootstrap temp tables go to our own directory, not a /tmp shared with other runs.
      `--tmpdir=${dir}`,
    ]);
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  const args = [
    "--no-defaults",
    "--user=root",
    `--datadir=${datadir}`,
    `--socket=${dir}/mysqld.sock`,
    `--pid-file=${dir}/mysqld.pid`,
    `--log-error=${dir}/error.log`,
    `--tmpdir=${dir}`,
    "--bind-address=127.0.0.1",
    `--port=${port}`,
    `--server-id=${serverId}`,
    "--skip-name-resolve",
    "--skip-slave-start",
    `--innodb-buffer-pool-size=${options.innodbBufferPoolSize ?? "64M"}`,
    "--innodb-flush-log-at-trx-commit=2",
    "--sync-binlog=0",
    `--max-allowed-packet=${options.maxAllowedPacket ?? 256 * 1024 * 1024}`,
    `--secure-file-priv=${options.secureFilePriv ?? dir}`,
    `--binlog-format=${options.binlogFormat ?? "MIXED"}`,
    `--binlog-checksum=${options.binlogChecksum ?? "CRC32"}`,
    `--relay-log=${relayLog}`,
    "--relay-log-purge=0",
    `--max-binlog-size=${options.maxBinlogSize ?? 1024 * 1024 * 1024}`,
    `--max-relay-log-size=${options.maxRelayLogSize ?? 0}`,
    "--local-infile=1",
    "--performance-schema=0",
  ];
  if (logBin !== false) args.push(`--log-bin=${logBin}`);
  if (options.logSlaveUpdates) args.push("--log-slave-updates");
  args.push(...(options.extraArgs ?? []));
  const child = new Deno.Command("mariadbd", {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const server = new MariadbServer(child, {
    dir,
    port,
    serverId,
    logBin,
    relayLog,
    keepDir: options.keepDir ?? false,
  });
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  let lastError = "";
  while (true) {
    if (server.exited) {
      const tail = server.errorLogTail();
      const status = await server.status;
      await server.stop();
      throw new Error(
        `mariadbd (server_id ${serverId}) exited with code ${status.code} during startup:\n${tail}`,
      );
    }
    try {
      const c = await server.connect();
      await c.query("SELECT 1");
      await c.end();
      return server;
    } catch (e) {
      lastError = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) {
      const tail = server.errorLogTail();
      await server.stop();
      throw new Error(
        `mariadbd (server_id ${serverId}) did not accept connections in time (last error: ${lastError}):\n${tail}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Creates a replication user on the master (if missing) and points the replica at it with
 * CHANGE MASTER TO ... MASTER_HOST='127.0.0.1', then START SLAVE.
 */
export async function setupReplication(
  replica: MariadbServer,
  master: MariadbServer,
  options: ReplicationOptions = {},
): Promise<void> {
  const user = options.user ?? "repl";
  // One password per master, so that pointing a second replica at it does not lock out the first.
  const password = options.password ?? master.replicationPassword;
  await master.query("CREATE USER IF NOT EXISTS ?@'127.0.0.1' IDENTIFIED BY ?", [user, password]);
  if (options.password !== undefined) {
    await master.query("ALTER USER ?@'127.0.0.1' IDENTIFIED BY ?", [user, password]);
  }
  await master.query("GRANT REPLICATION SLAVE ON *.* TO ?@'127.0.0.1'", [user]);
  let file = options.masterLogFile;
  if (file === undefined) {
    const first = master.binlogFiles()[0];
    if (!first) throw new Error(`Master (server_id ${master.serverId}) has no binary log`);
    file = first.split("/").pop()!;
  }
  await replica.query(
    "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=?, MASTER_USER=?, MASTER_PASSWORD=?, " +
      "MASTER_LOG_FILE=?, MASTER_LOG_POS=?, MASTER_USE_GTID=no",
    [master.port, user, password, file, options.masterLogPos ?? 4],
  );
  await replica.query("START SLAVE");
}

/** SHOW SLAVE STATUS of a replica as a plain record (empty when not a replica). */
export async function slaveStatus(replica: MariadbServer): Promise<Record<string, unknown>> {
  const rows = await replica.query<Record<string, unknown>[]>("SHOW SLAVE STATUS");
  return rows[0] ?? {};
}

/**
 * Waits until the replica has executed everything the master had logged when called: both
 * replication threads running and (Relay_Master_Log_File, Exec_Master_Log_Pos) at or past the
 * master's SHOW MASTER STATUS. Throws with both statuses on timeout or when a
 * replication thread stops.
 */
export async function waitForCatchUp(
  replica: MariadbServer,
  master: MariadbServer,
  options: CatchUpOptions = {},
): Promise<void> {
  const [ms] = await master.query<{ File: string; Position: string | number }[]>(
    "SHOW MASTER STATUS",
  );
  if (!ms) throw new Error(`Master (server_id ${master.serverId}) has binary logging off`);
  const target = { file: ms.File, pos: Number(ms.Position) };
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  let st: Record<string, unknown> = {};
  while (true) {
    st = await slaveStatus(replica);
    const io = st.Slave_IO_Running;
    const sql = st.Slave_SQL_Running;
    if (io === "Yes" && sql === "Yes") {
      // Binlog names end in a sequence number; a later file means the target is passed.
      const seq = (name: unknown) => Number(/\.(\d+)$/.exec(String(name))?.[1] ?? -1);
      const file = seq(st.Relay_Master_Log_File);
      if (
        file > seq(target.file) ||
        file === seq(target.file) && Number(st.Exec_Master_Log_Pos) >= target.pos
      ) {
        return;
      }
    }
    const ioError = Number(st.Last_IO_Errno ?? 0) !== 0;
    const failed = (ioError && (options.ioErrorIsFatal ?? true)) ||
      Number(st.Last_SQL_Errno ?? 0) !== 0 || sql === "No" || io === "No";
    if (failed || Date.now() > deadline) {
      const fields = [
        "Slave_IO_Running",
        "Slave_SQL_Running",
        "Master_Log_File",
        "Read_Master_Log_Pos",
        "Relay_Master_Log_File",
        "Exec_Master_Log_Pos",
        "Last_IO_Error",
        "Last_SQL_Error",
      ].map((f) => `${f}=${st[f]}`).join(" ");
      throw new Error(
        `Replica (server_id ${replica.serverId}) ${
          failed ? "replication failed" : "did not catch up in time"
        }: master at ${target.file}:${target.pos}; ${fields}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts several servers in parallel. If any fails to start, the others are stopped (and their
 * directories removed) before the first error is rethrown, so nothing is left running.
 */
export async function startMariadbServers(
  options: MariadbServerOptions[],
): Promise<MariadbServer[]> {
  const results = await Promise.allSettled(options.map((o) => startMariadb(o)));
  const started = results.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) {
    await stopAll(started);
    throw failed.reason;
  }
  return started;
}

/** Stops every given server (in parallel), ignoring servers that are undefined. */
export async function stopAll(servers: (MariadbServer | undefined)[]): Promise<void> {
  await Promise.all(servers.filter((s) => s !== undefined).map((s) => s!.stop()));
}

/**
 * The agent's parameters: one table, where each parameter is written once, drives the defaults
 * (also exported typed, {@link PARAM_DEFAULTS}), validation, the meta-data XML, `--help` and the
 * typed {@link AgentParams} (its fields are the table's keys, their types the rows' content
 * types). Pure: file checks (binary present, credentials file) live in the agent's validate-all
 * and credentials.ts.
 *
 * @module
 */

import { isTicketName } from "./booth_conf.ts";

/** OCF parameter content types. */
export type ParamType = "string" | "integer" | "boolean";

/** Which OCF error a bad value maps to. */
export type ProblemKind = "configured" | "installed" | "perm";

/** A validation problem. */
export interface Problem {
  /** configured → OCF_ERR_CONFIGURED, installed → OCF_ERR_INSTALLED, perm → OCF_ERR_PERM. */
  kind: ProblemKind;
  /** Sentence-case message, safe to log (never a secret). */
  message: string;
}

/** One row of the parameter table. */
export interface ParamSpec {
  /** OCF name (`OCF_RESKEY_<name>`). */
  name: string;
  /** Content type. */
  type: ParamType;
  /** Default as written in meta-data ("" for none). */
  default: string;
  /** One line. */
  shortdesc: string;
  /** The manual text. */
  longdesc: string;
  /** Extra check on a set value; returns a message when wrong. */
  check?: (value: string) => string | undefined;
  /** A secret: never logged, never shown in errors. */
  secret?: boolean;
  /**
   * OCF 1.1 `reloadable`: a change needs no restart of mysqld. Pacemaker then runs
   * `reload-agent` with the new value instead of stopping and starting the instance; the agent
   * reads its parameters at every action, and reload-agent applies what lives in the server
   * (the heartbeat writer, semi-sync settings).
   */
  reloadable?: boolean;
}

function integerIn(min: number, max: number): (value: string) => string | undefined {
  return (value) => {
    if (!/^\d+$/.test(value)) return `must be an integer, not "${value}"`;
    const n = Number(value);
    if (n < min || n > max) return `must be between ${min} and ${max}, not ${n}`;
    return undefined;
  };
}

function absolutePath(value: string): string | undefined {
  if (value === "") return undefined;
  if (!value.startsWith("/")) return `must be an absolute path, not "${value}"`;
  if (/[\0\n]/.test(value)) return "must not contain NUL or newline characters";
  return undefined;
}

function identifier(value: string): string | undefined {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value)) {
    return `must be 1-64 letters, digits, "_", "." or "-", not "${value}"`;
  }
  return undefined;
}

/** The `db.table` form accepted for test_table. */
function tableName(value: string): string | undefined {
  if (!/^[A-Za-z0-9_$]{1,64}(\.[A-Za-z0-9_$]{1,64})?$/.test(value)) {
    return `must be TABLE or DB.TABLE made of letters, digits, "_" or "$", not "${value}"`;
  }
  return undefined;
}

function replicationOptionsCheck(value: string): string | undefined {
  const parsed = parseReplicationOptions(value);
  return "error" in parsed ? parsed.error : undefined;
}

function mysqlUser(value: string): string | undefined {
  if (value.length > 80 || /[\0\n]/.test(value)) return "must be at most 80 characters, no NUL";
  return undefined;
}

/** Makes the typed value of a parameter's text; undefined when the text has none. */
type ValueParser<T> = (text: string) => T | undefined;

/** A row with the typed value the agent works with. */
interface ParamDef<T> extends ParamSpec {
  /** The typed value, when it is not the one of its content type (see {@link BY_TYPE}). */
  value?: ValueParser<T>;
}

/** The typed value of each content type: the text, a whole number, an OCF boolean. */
const BY_TYPE: Record<ParamType, ValueParser<unknown>> = {
  string: (text) => text,
  integer: asInteger,
  boolean: parseBoolean,
};

/** White-space separated words (no shell quoting). */
function asWords(value: string): string[] {
  return value.trim() === "" ? [] : value.trim().split(/\s+/);
}

function asInteger(value: string): number | undefined {
  return /^\d+$/.test(value) ? Number(value) : undefined;
}

function asReplicationOptions(value: string): ReplicationOption[] | undefined {
  const parsed = parseReplicationOptions(value);
  return "options" in parsed ? parsed.options : undefined;
}

function asReplicationMode(value: string): "position" | "gtid" | undefined {
  return value === "position" || value === "gtid" ? value : undefined;
}

/**
 * The parameter table, in meta-data order: each parameter once, keyed by its field in
 * {@link AgentParams}, with its OCF name, default, descriptions, check and typed value.
 */
const TABLE = {
  binary: {
    name: "binary",
    type: "string",
    default: "",
    shortdesc: "MySQL/MariaDB server binary",
    longdesc:
      "Path of the server binary, started directly (never mysqld_safe, whose restart loop would undo a kill). Default: mariadbd, else mysqld, found in /usr/sbin, /usr/bin, /usr/local/sbin, /usr/local/bin or /usr/local/mysql/bin.",
    check: absolutePath,
  },
  binaryPrefix: {
    name: "binary_prefix",
    type: "string",
    default: "",
    shortdesc: "Command prefix for the server",
    longdesc:
      "A command put in front of the server binary, split on white space, for example 'numactl --interleave=all'. The first word must be an absolute path. No shell is involved.",
    check: (v) => v.trim() === "" ? undefined : absolutePath(v.trim().split(/\s+/)[0]),
    value: asWords,
  },
  config: {
    name: "config",
    type: "string",
    default: "/etc/mysql/my.cnf",
    shortdesc: "Server configuration file",
    longdesc:
      "The my.cnf passed as --defaults-file. It must set server_id and log_bin; the agent never edits it.",
    check: absolutePath,
  },
  datadir: {
    name: "datadir",
    type: "string",
    default: "/var/lib/mysql",
    shortdesc: "Data directory",
    longdesc:
      "The server's data directory, passed as --datadir. start checks that it holds a database (a mysql directory) and refuses to start on an empty one unless enable_creation is true.",
    check: absolutePath,
  },
  user: {
    name: "user",
    type: "string",
    default: "mysql",
    shortdesc: "System user running the server",
    longdesc: "The server runs as this system user (--user); it must own datadir.",
    check: identifier,
  },
  group: {
    name: "group",
    type: "string",
    default: "mysql",
    shortdesc: "System group of the server's files",
    longdesc: "Group owning the pid, socket and log directories the agent creates.",
    check: identifier,
  },
  log: {
    name: "log",
    type: "string",
    default: "/var/log/mysql/error.log",
    shortdesc: "Server error log",
    longdesc:
      "Passed as --log-error; its tail is quoted in the exit reason when the server fails to start.",
    check: absolutePath,
  },
  pid: {
    name: "pid",
    type: "string",
    default: "/run/mysqld/mysqld.pid",
    shortdesc: "Server pid file",
    longdesc: "Passed as --pid-file; the agent checks and cleans it.",
    check: absolutePath,
  },
  socket: {
    name: "socket",
    type: "string",
    default: "/run/mysqld/mysqld.sock",
    shortdesc: "Server unix socket",
    longdesc: "Passed as --socket; the agent connects through it for every check.",
    check: absolutePath,
  },
  additionalParameters: {
    name: "additional_parameters",
    type: "string",
    default: "",
    shortdesc: "Extra server options",
    longdesc:
      "Extra command line options for the server, split on white space (no shell quoting), for example '--port=3306 --bind-address=10.0.0.1'.",
    check: (v) => /[\0\n]/.test(v) ? "must not contain NUL or newline characters" : undefined,
    value: asWords,
  },
  enableCreation: {
    name: "enable_creation",
    reloadable: true,
    type: "boolean",
    default: "false",
    shortdesc: "Create the data directory when empty",
    longdesc:
      "When true and datadir holds no database, start initialises it (mariadb-install-db, or mysqld --initialize-insecure) and creates the logins named in credentials_file.",
  },
  credentialsFile: {
    name: "credentials_file",
    reloadable: true,
    type: "string",
    default: "",
    shortdesc: "Credentials file (my.cnf style, mode 0600)",
    longdesc:
      "A file with a [client] section (user, password: the login the agent uses over the socket, and mysql_prm status over TCP) and a [replication] section (user, password: the replication login), for example '[client] user = prm password = secret [replication] user = repl password = secret2' on separate lines. It must not be readable by group or others (mode 0600); keep the same file on every node. When set, test_user/test_passwd and replication_user/replication_passwd are not needed, so no password lives in the CIB.",
    check: absolutePath,
  },
  testUser: {
    name: "test_user",
    reloadable: true,
    type: "string",
    default: "root",
    shortdesc: "Monitoring login",
    longdesc:
      "The login the agent uses over the socket (needs SUPER or its split privileges, REPLICATION CLIENT, PROCESS, RELOAD). Overridden by credentials_file's [client] user.",
    check: mysqlUser,
  },
  testPasswd: {
    name: "test_passwd",
    reloadable: true,
    type: "string",
    default: "",
    shortdesc: "Monitoring password",
    longdesc: "Password of test_user. Prefer credentials_file: a parameter is stored in the CIB.",
    secret: true,
  },
  testTable: {
    name: "test_table",
    reloadable: true,
    type: "string",
    default: "mysql.user",
    shortdesc: "Table read by deep monitors",
    longdesc:
      "With OCF_CHECK_LEVEL 10 or more, monitor reads one row of this table to prove the server answers queries.",
    check: tableName,
  },
  replicationUser: {
    name: "replication_user",
    type: "string",
    default: "",
    shortdesc: "Replication login",
    longdesc:
      "The login replicas use to connect to the promoted node (REPLICATION SLAVE). Overridden by credentials_file's [replication] user. Required for a promotable clone.",
    check: mysqlUser,
  },
  replicationPasswd: {
    name: "replication_passwd",
    type: "string",
    default: "",
    shortdesc: "Replication password",
    longdesc:
      "Password of replication_user. Prefer credentials_file: a parameter is stored in the CIB.",
    secret: true,
  },
  replicationPort: {
    name: "replication_port",
    type: "integer",
    default: "3306",
    shortdesc: "Port of the promoted node",
    longdesc:
      "TCP port replicas connect to on the promoted node, and the port mysql_prm status uses to reach every node. Replicas connect to the promoted node's name as Pacemaker knows it (crm_node -n), so that name must resolve (DNS or /etc/hosts) to the address replication should use.",
    check: integerIn(1, 65535),
  },
  replicationOptions: {
    name: "replication_options",
    type: "string",
    default: "",
    shortdesc: "Extra replication connection options",
    longdesc:
      "Comma-separated KEY=VALUE options for CHANGE MASTER TO / CHANGE REPLICATION SOURCE TO, without the MASTER_/SOURCE_ prefix (which is accepted too): SSL, SSL_CA, SSL_CAPATH, SSL_CERT, SSL_KEY, SSL_CIPHER, SSL_CRL, SSL_CRLPATH, SSL_VERIFY_SERVER_CERT, CONNECT_RETRY, HEARTBEAT_PERIOD, RETRY_COUNT. Values are validated and quoted by the agent, never pasted into SQL.",
    check: replicationOptionsCheck,
    value: asReplicationOptions,
  },
  maxSlaveLag: {
    name: "max_slave_lag",
    reloadable: true,
    type: "integer",
    default: "3600",
    shortdesc: "Maximum replica lag in seconds",
    longdesc:
      "A replica lagging more than this many seconds loses its reader attribute and its promotion score (it is never promoted), and its monitor fails if evict_outdated_slaves is true. Lag is Seconds_Behind_Master, or the heartbeat lag when heartbeat is true (Seconds_Behind_Master reads 0 while the IO thread waits on a dead connection). A replica whose IO thread cannot reach the master is not readable whatever its lag, but stays promotable: during a failover that is expected.",
    check: integerIn(1, 31_536_000),
  },
  evictOutdatedSlaves: {
    name: "evict_outdated_slaves",
    reloadable: true,
    type: "boolean",
    default: "false",
    shortdesc: "Stop replicas lagging past max_slave_lag",
    longdesc:
      "When true, monitor fails on a replica lagging more than max_slave_lag seconds, so that Pacemaker recovers it.",
  },
  heartbeat: {
    name: "heartbeat",
    reloadable: true,
    type: "boolean",
    default: "false",
    shortdesc: "Measure lag with a heartbeat table",
    longdesc:
      "When true, the promoted node writes a timestamp row into heartbeat_table every heartbeat_interval seconds, and replicas measure their lag as their own UTC clock minus the newest row of their master's server_id, instead of trusting Seconds_Behind_Master (which reads 0 while the IO thread waits on a dead connection, and ignores what the master wrote but the replica never received). That lag then drives the reader attribute, max_slave_lag, evict_outdated_slaves and the promotion score (a replica lagging past max_slave_lag is never promoted). While the IO thread is not connected, Seconds_Behind_Master rules as before (the replica is not readable, but still promotable during a failover). The writer is an event of the server's event scheduler, created by promote (with semi_sync, by the first promoted monitor, so that a missing acknowledgement never delays a failover), checked by every promoted monitor, and disabled by demote without binlogging; setting the writer up runs SET GLOBAL event_scheduler=ON (it must not be DISABLED in my.cnf); it writes only while read_only is off, so a demoted or restarted old master never writes a heartbeat. The table has pt-heartbeat's layout (ts varchar(26) in UTC, server_id primary key, file, position, relay_master_log_file, exec_master_log_pos), so 'pt-heartbeat --check --utc -D DB --table TABLE --master-server-id N' reads the same figure. Needs the nodes' clocks in sync (NTP) and the EVENT privilege for the agent's login; no time zone tables (it uses UTC_TIMESTAMP).",
  },
  heartbeatTable: {
    name: "heartbeat_table",
    reloadable: true,
    type: "string",
    default: "percona.heartbeat",
    shortdesc: "Heartbeat table (DB.TABLE)",
    longdesc:
      "The table the heartbeat writes and replicas read, as DB.TABLE (pt-heartbeat's usual percona.heartbeat by default). Promote creates the database and the table when missing; they replicate like any table. The event is named TABLE_prm_writer in the same database. Do not let pt-heartbeat --update write the same table as well.",
    check: (v) => v.includes(".") ? tableName(v) : "must be DB.TABLE",
  },
  heartbeatInterval: {
    name: "heartbeat_interval",
    reloadable: true,
    type: "integer",
    default: "1",
    shortdesc: "Seconds between two heartbeats",
    longdesc:
      "How often the promoted node writes its heartbeat row, in whole seconds (the event scheduler's resolution), independently of the monitor interval. The measured lag of an up-to-date replica is between 0 and this interval, so keep max_slave_lag well above it.",
    check: integerIn(1, 3600),
  },
  readerAttribute: {
    name: "reader_attribute",
    type: "string",
    default: "readable",
    shortdesc: "Node attribute for reader VIPs",
    longdesc:
      "Name of the transient node attribute set to 1 where reads are fine (the promoted node, and replicas with both threads running, no replication error and a lag within max_slave_lag) and 0 elsewhere; it is deleted when the instance stops. Keep reader VIPs away from other nodes with a rule such as (crm shell) 'location loc_reader vip_reader rule -inf: readable lt 1 or not_defined readable'. Same name and meaning as in PRM and ocf:heartbeat:mysql.",
    check: identifier,
  },
  readerFailcount: {
    name: "reader_failcount",
    reloadable: true,
    type: "integer",
    default: "1",
    shortdesc: "Failed checks before a replica stops being readable",
    longdesc:
      "Number of consecutive failing replica checks before the reader attribute goes to 0; one good check sets it back to 1.",
    check: integerIn(1, 1000),
  },
  asyncStop: {
    name: "async_stop",
    reloadable: true,
    type: "boolean",
    default: "false",
    shortdesc: "Return from stop once the server stops accepting connections",
    longdesc:
      "When true, stop returns as soon as the server no longer accepts connections instead of waiting for it to exit; monitor reports it not running meanwhile, and start waits for the old process (within its timeout) before starting a new one.",
  },
  replicationMode: {
    name: "replication_mode",
    type: "string",
    default: "position",
    shortdesc: "Replication positioning: position or gtid",
    longdesc:
      "How replicas find their place in the master's binary log. 'position' (default): binlog file and position; after a master crash the agent resyncs the other replicas by matching their last transactions in the new master's binlog. 'gtid': global transaction ids. MariaDB replicas use CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos; MySQL 8 replicas use SOURCE_AUTO_POSITION=1 (MySQL: SQL unit-tested only). The election compares GTID positions domain by domain, and after a failover every replica simply repoints to the new master by GTID (no resync needed). Every node needs log_slave_updates=ON (so the new master's binlog holds what it replicated) and MariaDB's gtid_strict_mode=ON is recommended (validate-all warns when it is off); MySQL needs gtid_mode=ON and enforce_gtid_consistency=ON. A node coming back (for example the crashed old master) whose gtid_binlog_pos holds transactions the new master never had (errant transactions) is kept out: its start fails with an exit reason naming them, and it never becomes readable, until a person removes them.",
    check: (v) =>
      v === "position" || v === "gtid" ? undefined : `must be position or gtid, not "${v}"`,
    value: asReplicationMode,
  },
  semiSync: {
    name: "semi_sync",
    reloadable: true,
    type: "boolean",
    default: "false",
    shortdesc: "Semi-synchronous replication",
    longdesc:
      "When true, the promoted node enables semi-synchronous replication as the source (MariaDB rpl_semi_sync_master_enabled, built in since 10.3; MySQL 8.0.26+ rpl_semi_sync_source_enabled with the semisync_source plugin, installed by the agent when missing) with wait point AFTER_SYNC, and every replica enables it as the replica (rpl_semi_sync_slave_enabled / rpl_semi_sync_replica_enabled). A commit is then acknowledged to the client only after at least one replica wrote it to its relay log, so the replica that received the most (the one the election promotes) holds every acknowledged commit, as long as that replica survives. When no replica acknowledges within semi_sync_timeout, the master falls back to asynchronous replication (and returns to semi-sync once a replica catches up): availability wins over the guarantee then. Costs one network round trip per commit.",
  },
  semiSyncTimeoutMs: {
    name: "semi_sync_timeout",
    reloadable: true,
    type: "integer",
    default: "10000",
    shortdesc: "Semi-sync acknowledgement timeout in ms",
    longdesc:
      "rpl_semi_sync_master_timeout (MySQL: rpl_semi_sync_source_timeout) in milliseconds, set on the promoted node when semi_sync is true: how long a commit waits for a replica's acknowledgement before the master falls back to asynchronous replication. The default (10 s, the server's own default) keeps the guarantee through short replica hiccups and replica restarts; a smaller value bounds the write stall when every replica is gone (for example right after a failover, until the others are repointed) at the price of more commits acknowledged without a replica copy. Very large values make writes hang while no replica is connected.",
    check: integerIn(0, 3_600_000),
  },
  tryRestartCrashedMaster: {
    name: "try_restart_crashed_master",
    type: "boolean",
    default: "true",
    shortdesc: "Restart a crashed master in place",
    longdesc:
      "When the promoted node's server dies (crash, kill -9, OOM) while its node and Pacemaker stay up, the promoted monitor reports it not running and Pacemaker recovers the instance (demote, stop, start, promote). With this true, and no such restart in the last crash_restart_window seconds, the stop keeps this node first in line (promotion score 120, above every replica): the start brings the server back read-only (InnoDB crash recovery, bounded by the start timeout) and Pacemaker promotes it again, so the replicas resume where they were and no acknowledged write is left behind. Otherwise (false, a second crash within the window, disk full) the cluster fails over, and the start still brings the server back read-only to hand what it committed to the new master before that one opens writes (catchup_timeout). Needs migration-threshold above 1 (mysql_prm config sets 3): a node past it is banned and Pacemaker starts nothing there. Needs sync_binlog=1 and innodb_flush_log_at_trx_commit=1, so that what replicas received is still in the binary log after the crash.",
    reloadable: true,
  },
  crashRestartWindow: {
    name: "crash_restart_window",
    type: "integer",
    default: "3600",
    shortdesc: "Seconds during which a crashed master is restarted in place at most once",
    longdesc:
      "After an in-place restart of a crashed master (try_restart_crashed_master), a second crash within this many seconds fails over instead (a crash loop). The time is kept in the state folder (HA_RSCTMP), so a reboot of the node forgets it.",
    check: integerIn(1, 31_536_000),
    reloadable: true,
  },
  catchupTimeout: {
    name: "catchup_timeout",
    type: "integer",
    default: "10",
    shortdesc: "Seconds a promotee waits to receive the old master's last commits",
    longdesc:
      "When the old master is alive and read-only (a switchover's demote, or its server back after a crash, started read-only for this purpose), it publishes where its binary log ends; every replica, and the promotee again in promote, waits up to this many seconds (never past the operation's timeout) for its IO thread to receive up to there, restarting an IO thread that waits in its connect retry, before the promotee opens writes. What arrives is applied whole (never a partial transaction). Past the wait the failover goes on without, and the old master, holding transactions the new master lacks, is kept out with a salvage file.",
    check: integerIn(0, 3600),
    reloadable: true,
  },
  coldStartTimeout: {
    name: "cold_start_timeout",
    type: "integer",
    default: "120",
    shortdesc: "Seconds replicas wait for the last master after a whole-cluster outage",
    longdesc:
      "A replica that starts while the last published master (<rsc>_REPL_INFO) has no running instance in the cluster (after a whole-cluster outage, the replicas booting first) withholds its promotion score with the reason cold-start-wait (node attribute prm-<rsc>-not-promotable, shown by crm_mon -A and mysql_prm status) for up to this many seconds from its start: the old master may hold commits no replica received, and it is promoted as soon as it is back. After the wait the best present replica is promoted, and the old master, when it returns, is kept out with a salvage file if it holds more. A brand-new cluster (no published master) never waits.",
    check: integerIn(0, 86_400),
    reloadable: true,
  },
  diskFullThreshold: {
    name: "disk_full_threshold",
    type: "integer",
    default: "97",
    shortdesc: "Datadir filesystem use (percent) at which a node is treated as full",
    longdesc:
      "When the filesystem holding datadir is at least this full (used / (used + available), as df shows it), a replica withdraws its promotion score (reason disk-full) and its reader attribute, and it is not repointed until room is made; the promoted node's monitor fails with an exit reason: Pacemaker's recovery demotes it (the demote publishes where it stopped writing), a replica that received all of it is promoted, and the stop withdraws the old master's score. 0 turns the check off.",
    check: integerIn(0, 100),
    reloadable: true,
  },
  boothTicket: {
    name: "booth_ticket",
    type: "string",
    default: "",
    shortdesc: "Booth ticket of a two-site cluster",
    longdesc:
      "Two sites (each its own Pacemaker cluster, with booth and an arbitrator): the booth ticket that says which site holds the master (PRM called it booth_master_ticket). Only the site holding the ticket promotes a node (constrain the promoted role with rsc_ticket loss-policy=demote: 'mysql_prm config --site ...' prints it all); the other site's nodes are read-only replicas of the active site's master. The promoted node stores its coordinates (<rsc>_REPL_INFO) and, when demoted, its final position (prm-<rsc>-final) as attributes of the ticket at the other site (geostore -s other, carried by booth: no ssh, no shared CIB, no password), and the other site's nodes follow what their own CIB holds. Node names of both sites must resolve at every node, and the replication port must be reachable across sites. Empty (the default): one site, no booth.",
    check: (v) =>
      isTicketName(v)
        ? undefined
        : `must be a booth ticket name (letters, digits, "_", "." or "-", at most 63), not "${v}"`,
  },
  boothConfig: {
    name: "booth_config",
    type: "string",
    default: "/etc/booth/booth.conf",
    shortdesc: "Booth configuration file",
    longdesc:
      "The booth configuration with booth_ticket, used to reach the other site (geostore -c). It must name exactly two sites (and at least one arbitrator); validate-all checks that it exists and names the ticket.",
    check: absolutePath,
  },
  postPromoteScript: {
    name: "post_promote_script",
    reloadable: true,
    type: "string",
    default: "",
    shortdesc: "Script run after promotion",
    longdesc:
      "An executable run (without shell, no arguments, 30 s limit) after a successful promote; its failure is logged but does not fail the promote. It gets a minimal environment, never the agent's (which holds every parameter, passwords too): PATH, LC_ALL=C, OCF_RESOURCE_INSTANCE and PRM_RESOURCE (the resource), PRM_NODE (this node), PRM_MASTER_FILE and PRM_MASTER_POS (the coordinates it published).",
    check: absolutePath,
  },
  unresponsiveTimeout: {
    name: "unresponsive_timeout",
    reloadable: true,
    type: "integer",
    default: "30",
    shortdesc: "Seconds a server may answer nothing before it counts as failed",
    longdesc:
      "A server that accepts connections but completes no handshake, or answers not even a trivial query, for this many seconds (counted across monitors) fails its monitor, so that Pacemaker recovers it (a promoted one fails over; its stop then kills it after a short grace instead of waiting for an orderly shutdown). Until then it is reported degraded (190/191). A busy server that answers, even with an error (too many connections, lock wait timeouts, slow queries), is degraded, never failed.",
    check: integerIn(5, 3600),
  },
} satisfies Record<string, ParamDef<unknown>>;

/** The parameter table, in meta-data order (drives meta-data, `--help` and validation). */
export const PARAMS: readonly ParamSpec[] = Object.values(TABLE);

/** A validated `replication_options` entry, prefix-free (e.g. SSL_CA). */
export interface ReplicationOption {
  /** Key without MASTER_/SOURCE_ prefix. */
  key: string;
  /** A number for integer/boolean keys, a string for paths and ciphers. */
  value: number | string;
}

const OPTION_KINDS: Record<string, "bool" | "int" | "path" | "text"> = {
  SSL: "bool",
  SSL_CA: "path",
  SSL_CAPATH: "path",
  SSL_CERT: "path",
  SSL_KEY: "path",
  SSL_CIPHER: "text",
  SSL_CRL: "path",
  SSL_CRLPATH: "path",
  SSL_VERIFY_SERVER_CERT: "bool",
  CONNECT_RETRY: "int",
  HEARTBEAT_PERIOD: "int",
  RETRY_COUNT: "int",
};

/**
 * Parses `replication_options` into a validated list, or says what is wrong.
 *
 * @example
 * ```ts
 * const r = parseReplicationOptions("MASTER_SSL=1, SSL_CA=/etc/ssl/ca.pem");
 * // { options: [{ key: "SSL", value: 1 }, { key: "SSL_CA", value: "/etc/ssl/ca.pem" }] }
 * ```
 */
export function parseReplicationOptions(
  text: string,
): { options: ReplicationOption[] } | { error: string } {
  const options: ReplicationOption[] = [];
  for (const raw of text.split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const eq = item.indexOf("=");
    if (eq < 0) return { error: `replication option "${item}" is not KEY=VALUE` };
    const key = item.slice(0, eq).trim().toUpperCase().replace(/^(MASTER|SOURCE)_/, "");
    let value = item.slice(eq + 1).trim();
    if (/^'.*'$|^".*"$/.test(value)) value = value.slice(1, -1);
    const kind = OPTION_KINDS[key];
    if (kind === undefined) {
      return {
        error: `replication option "${key}" is not supported (use one of ${
          Object.keys(OPTION_KINDS).join(", ")
        })`,
      };
    }
    if (options.some((o) => o.key === key)) {
      return { error: `replication option ${key} is repeated` };
    }
    if (kind === "bool") {
      if (!/^[01]$/.test(value)) return { error: `replication option ${key} must be 0 or 1` };
      options.push({ key, value: Number(value) });
    } else if (kind === "int") {
      if (!/^\d{1,9}$/.test(value)) {
        return { error: `replication option ${key} must be an integer` };
      }
      options.push({ key, value: Number(value) });
    } else if (kind === "path") {
      if (!value.startsWith("/") || /[\0\n'"\\]/.test(value)) {
        return { error: `replication option ${key} must be an absolute path without quotes` };
      }
      options.push({ key, value });
    } else {
      if (!/^[A-Za-z0-9_:+!@.-]{1,512}$/.test(value)) {
        return { error: `replication option ${key} has characters outside a cipher list` };
      }
      options.push({ key, value });
    }
  }
  return { options };
}

/** A row's typed value: its own parser's, else its content type's. */
type ValueOf<D> = D extends { value: ValueParser<infer V> } ? V
  : D extends { type: "integer" } ? number
  : D extends { type: "boolean" } ? boolean
  : string;

/** The agent's parameters, typed and defaulted: one field per row of the table. */
export type AgentParams = { -readonly [K in keyof typeof TABLE]: ValueOf<(typeof TABLE)[K]> };

/** Parses an OCF boolean; undefined when not one. */
export function parseBoolean(value: string): boolean | undefined {
  if (/^(1|yes|true|on|y)$/i.test(value.trim())) return true;
  if (/^(0|no|false|off|n)$/i.test(value.trim())) return false;
  return undefined;
}

/**
 * Applies defaults and checks every value against the table. Problems are all "configured"
 * (inherently wrong values); host checks are the agent's. A value that is wrong gives its
 * problem, and the default's typed value where it has none of its own (an integer or a boolean
 * that is not one).
 */
export function resolveParams(
  raw: Record<string, string>,
): { params: AgentParams; problems: Problem[] } {
  const problems: Problem[] = [];
  const params: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(TABLE) as [string, ParamDef<unknown>][]) {
    const given = raw[spec.name];
    const value = given ?? spec.default;
    const parse = spec.value ?? BY_TYPE[spec.type];
    params[key] = parse(value) ?? parse(spec.default);
    if (given === undefined || given === "") continue;
    if (spec.type === "boolean" && parseBoolean(value) === undefined) {
      problems.push({
        kind: "configured",
        message: `Parameter ${spec.name} must be true or false, not "${value}"`,
      });
      continue;
    }
    const msg = spec.check?.(value);
    if (msg !== undefined) {
      problems.push({
        kind: "configured",
        message: spec.secret
          ? `Parameter ${spec.name} is invalid`
          : `Parameter ${spec.name} ${msg}`,
      });
    }
  }
  return { params: params as AgentParams, problems };
}

/**
 * Every parameter's default, typed: what the agent uses when a parameter is not set. For readers
 * of a resource's parameters (mysql_prm status, config) that must not restate a default.
 *
 * @example
 * ```ts
 * PARAM_DEFAULTS.replicationPort; // 3306
 * PARAM_DEFAULTS.readerAttribute; // "readable"
 * ```
 */
export const PARAM_DEFAULTS: Readonly<AgentParams> = (() => {
  const defaults = resolveParams({}).params;
  for (const v of Object.values(defaults)) if (Array.isArray(v)) Object.freeze(v);
  return Object.freeze(defaults);
})();

// The credentials file has a module of its own; these names stay importable from here.
export {
  type Credentials,
  type Login,
  parseCredentialsFile,
  resolveCredentials,
} from "./credentials.ts";

function xmlEscape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/** An advertised action. */
export interface ActionSpec {
  /** Action name. */
  name: string;
  /** Timeout in seconds. */
  timeout: number;
  /** Interval in seconds, for monitors. */
  interval?: number;
  /** Role, for monitors. */
  role?: string;
  /** OCF_CHECK_LEVEL depth. */
  depth?: number;
}

/** The actions the agent advertises, with their default timeouts. */
export const ACTIONS: readonly ActionSpec[] = [
  { name: "start", timeout: 120 },
  { name: "stop", timeout: 120 },
  { name: "promote", timeout: 120 },
  { name: "demote", timeout: 120 },
  { name: "notify", timeout: 90 },
  { name: "monitor", timeout: 30, interval: 5, role: "Promoted", depth: 0 },
  { name: "monitor", timeout: 30, interval: 7, role: "Unpromoted", depth: 0 },
  { name: "validate-all", timeout: 10 },
  { name: "reload-agent", timeout: 30 },
  { name: "meta-data", timeout: 5 },
];

/**
 * The OCF 1.1 meta-data document. It validates against Pacemaker's own OCF 1.1 schema
 * (`ocf-ra-1.1.rng`) and, for ocf-tester (which checks every agent against the OCF 1.0 DTD,
 * `ra-api-1.dtd`), against that DTD too: an internal DTD subset declares what OCF 1.1 added
 * that the 1.0 DTD lists as closed sets (the `reloadable` attribute, action names such as
 * `reload-agent`). Internal declarations come first, and the first declaration of an attribute
 * binds, so the document is valid under both without a second form.
 */
export function metadataXml(version: string): string {
  const lines = [
    `<?xml version="1.0"?>`,
    `<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd" [`,
    `<!ATTLIST parameter reloadable (0|1) "0">`,
    `<!ATTLIST action name CDATA #REQUIRED>`,
    `]>`,
    `<resource-agent name="mysql_prm" version="${xmlEscape(version)}">`,
    `<version>1.1</version>`,
    `<longdesc lang="en">`,
    xmlEscape(
      "Manages a MySQL/MariaDB server as a Pacemaker promotable clone: the promoted instance is the writable master (read_only off), unpromoted instances are read-only replicas of it. Configure it as a promotable clone with notify=true and promoted-max=1 (start and promote refuse otherwise, with an exit reason) and two monitor operations with different intervals (one per role); fencing is required, since a cut-off master must not keep accepting writes. The promoted node publishes its coordinates in the cluster property <rsc>_REPL_INFO (host|file|pos, as PRM and ocf:heartbeat:mysql did); replicas follow it. Promotion scores (master-<rsc>: 1000 promoted, 100 healthy replica, none for a broken or lagging one) keep the role where it is; a node that is not a candidate says why in the node attribute prm-<rsc>-not-promotable. In a failover every replica publishes the position it received in pre-promote, and promote re-checks that no live peer holds more, moving the scores otherwise. The reader attribute (readable) tells reader VIPs where reads are fine. The role is always derived from the server (writable means promoted), so a probe after a restart of Pacemaker finds the truth. Parameters marked reloadable change without a restart of mysqld (reload-agent). Also on the command line: 'mysql_prm status' shows the cluster at a glance (and as metrics), 'mysql_prm switchover' moves the master with no acknowledged write lost, 'mysql_prm config' prints a complete Pacemaker configuration, 'mysql_prm --help' prints this manual. Works as a plain (non-cloned) resource too, as a single writable server.",
    ),
    `</longdesc>`,
    `<shortdesc lang="en">MySQL/MariaDB replication as a promotable clone</shortdesc>`,
    `<parameters>`,
  ];
  for (const p of PARAMS) {
    lines.push(
      `<parameter name="${p.name}" unique="0" required="0"${
        p.reloadable ? ` reloadable="1"` : ""
      }>`,
      `<longdesc lang="en">${xmlEscape(p.longdesc)}</longdesc>`,
      `<shortdesc lang="en">${xmlEscape(p.shortdesc)}</shortdesc>`,
      `<content type="${p.type}" default="${xmlEscape(p.default)}" />`,
      `</parameter>`,
    );
  }
  lines.push(`</parameters>`, `<actions>`);
  for (const a of ACTIONS) {
    let attrs = `name="${a.name}" timeout="${a.timeout}s"`;
    if (a.interval !== undefined) attrs += ` interval="${a.interval}s"`;
    if (a.role !== undefined) attrs += ` role="${a.role}"`;
    if (a.depth !== undefined) attrs += ` depth="${a.depth}"`;
    lines.push(`<action ${attrs} />`);
  }
  lines.push(`</actions>`, `</resource-agent>`, "");
  return lines.join("\n");
}

function wrap(text: string, width: number, indent: string): string {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && line.length + 1 + word.length > width) {
      out.push(indent + line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") out.push(indent + line);
  return out.join("\n");
}

/** The `--help` text. */
export function helpText(): string {
  const lines = [
    "mysql_prm: OCF resource agent for MySQL/MariaDB replication (a Pacemaker promotable clone)",
    "",
    "Usage: mysql_prm ACTION",
    "  Actions (run by Pacemaker): start stop monitor promote demote notify validate-all",
    "  reload-agent meta-data usage. Parameters come from OCF_RESKEY_<name> environment",
    "  variables; those marked (reloadable) change without a restart of mysqld.",
    "",
    "Usage: mysql_prm status [--format text|json|openmetrics|prometheus] [--help]",
    "  The cluster at a glance, from any node: roles, read_only, coordinates, replication",
    "  threads, lag, reader attribute, promotion score, why a node is not promotable, last",
    "  error; quorum and fencing. As metrics for Prometheus with --format.",
    "",
    "Usage: mysql_prm switchover [--to NODE] [--timeout DURATION] [--help]",
    "  Moves the master to another node with no acknowledged write lost, after checks.",
    "",
    "Usage: mysql_prm config [FLAGS] [--help]",
    "  Prints a complete, commented Pacemaker configuration (crm shell and pcs).",
    "",
    "Parameters (pcs resource describe ocf:prm:mysql_prm shows the same text):",
    "",
  ];
  for (const p of PARAMS) {
    const def = p.default === "" ? "" : ` (default: ${p.default})`;
    const reload = p.reloadable ? " (reloadable)" : "";
    lines.push(`  ${p.name} [${p.type}]${def}${reload}`, wrap(p.longdesc, 90, "      "));
  }
  lines.push("");
  return lines.join("\n");
}

import assert from "node:assert/strict";
import {
  backslashEscapesSessionSql,
  binlogStatusSql,
  changeSourceSql,
  type Flavour,
  gtidStateSql,
  gtidSubsetSql,
  gtidSubtractSql,
  killConnectionSql,
  normalizeReplicaStatus,
  parseFlavour,
  pluginActiveSql,
  quotedForms,
  quoteIdentifier,
  quoteString,
  readOnlyQuerySql,
  replicaStatusSql,
  resetReplicaAllSql,
  semiSyncOffSql,
  semiSyncPlugin,
  semiSyncSql,
  semiSyncVariables,
  serverIdentitySql,
  setGtidSlavePosSql,
  setReadOnlySql,
  startReplicaSql,
  stopReplicaSql,
  testTableSql,
} from "../sql.ts";

const MARIADB_1011 = parseFlavour("10.11.6-MariaDB-0+deb12u1-log", "Debian 12");
const MARIADB_105 = parseFlavour("10.5.23-MariaDB", "mariadb.org binary distribution");
const MYSQL_57 = parseFlavour("5.7.44-log", "MySQL Community Server (GPL)");
const MYSQL_8021 = parseFlavour("8.0.21", "MySQL Community Server - GPL");
const MYSQL_8022 = parseFlavour("8.0.22", "MySQL Community Server - GPL");
const MYSQL_8023 = parseFlavour("8.0.23", "MySQL Community Server - GPL");
const MYSQL_84 = parseFlavour("8.4.3", "MySQL Community Server - GPL");
const PERCONA_80 = parseFlavour("8.0.36-28", "Percona Server (GPL), Release 28");

Deno.test("parseFlavour tells MariaDB from MySQL and reads the version", () => {
  assert.deepEqual(MARIADB_1011, { kind: "mariadb", major: 10, minor: 11, patch: 6 });
  assert.deepEqual(MYSQL_84, { kind: "mysql", major: 8, minor: 4, patch: 3 });
  assert.deepEqual(PERCONA_80, { kind: "mysql", major: 8, minor: 0, patch: 36 });
  // MariaDB 11 without -MariaDB in VERSION(): the comment decides.
  assert.equal(parseFlavour("11.4.2", "MariaDB Server").kind, "mariadb");
});

Deno.test("replication statements per flavour and version", () => {
  const table: [Flavour, string, string, string, string, string][] = [
    [
      MARIADB_1011,
      "SHOW SLAVE STATUS",
      "START SLAVE",
      "STOP SLAVE",
      "RESET SLAVE ALL",
      "SHOW MASTER STATUS",
    ],
    [
      MARIADB_105,
      "SHOW SLAVE STATUS",
      "START SLAVE",
      "STOP SLAVE",
      "RESET SLAVE ALL",
      "SHOW MASTER STATUS",
    ],
    [
      MYSQL_57,
      "SHOW SLAVE STATUS",
      "START SLAVE",
      "STOP SLAVE",
      "RESET SLAVE ALL",
      "SHOW MASTER STATUS",
    ],
    [
      MYSQL_8021,
      "SHOW SLAVE STATUS",
      "START SLAVE",
      "STOP SLAVE",
      "RESET SLAVE ALL",
      "SHOW MASTER STATUS",
    ],
    [
      MYSQL_8022,
      "SHOW REPLICA STATUS",
      "START REPLICA",
      "STOP REPLICA",
      "RESET REPLICA ALL",
      "SHOW MASTER STATUS",
    ],
    [
      parseFlavour("8.2.0"),
      "SHOW REPLICA STATUS",
      "START REPLICA",
      "STOP REPLICA",
      "RESET REPLICA ALL",
      "SHOW BINARY LOG STATUS",
    ],
    [
      MYSQL_84,
      "SHOW REPLICA STATUS",
      "START REPLICA",
      "STOP REPLICA",
      "RESET REPLICA ALL",
      "SHOW BINARY LOG STATUS",
    ],
  ];
  for (const [f, status, start, stop, reset, binlog] of table) {
    const v = `${f.kind} ${f.major}.${f.minor}.${f.patch}`;
    assert.equal(replicaStatusSql(f), status, v);
    assert.equal(startReplicaSql(f), start, v);
    assert.equal(stopReplicaSql(f), stop, v);
    assert.equal(resetReplicaAllSql(f), reset, v);
    assert.equal(binlogStatusSql(f), binlog, v);
  }
});

Deno.test("read_only statements: super_read_only only on MySQL", () => {
  assert.deepEqual(setReadOnlySql(MARIADB_1011, true), ["SET GLOBAL read_only = ON"]);
  assert.deepEqual(setReadOnlySql(MARIADB_1011, false), ["SET GLOBAL read_only = OFF"]);
  assert.deepEqual(setReadOnlySql(MYSQL_84, true), ["SET GLOBAL super_read_only = ON"]);
  assert.deepEqual(setReadOnlySql(MYSQL_84, false), ["SET GLOBAL read_only = OFF"]);
  assert.equal(readOnlyQuerySql(MARIADB_1011), "SELECT @@global.read_only AS ro");
  assert.match(readOnlyQuerySql(MYSQL_8023), /super_read_only/);
});

const TARGET = {
  host: "prm2",
  port: 3306,
  user: "repl",
  password: "pw",
  file: "mysql-bin.000003",
  pos: 1234,
};

Deno.test("CHANGE MASTER TO on MariaDB and old MySQL", () => {
  assert.equal(
    changeSourceSql(MARIADB_1011, TARGET),
    "CHANGE MASTER TO MASTER_HOST = 'prm2', MASTER_PORT = 3306, MASTER_USER = 'repl', " +
      "MASTER_PASSWORD = 'pw', MASTER_LOG_FILE = 'mysql-bin.000003', MASTER_LOG_POS = 1234, " +
      "MASTER_USE_GTID = no",
  );
  assert.equal(
    changeSourceSql(MYSQL_8022, TARGET),
    "CHANGE MASTER TO MASTER_HOST = 'prm2', MASTER_PORT = 3306, MASTER_USER = 'repl', " +
      "MASTER_PASSWORD = 'pw', MASTER_LOG_FILE = 'mysql-bin.000003', MASTER_LOG_POS = 1234, " +
      "MASTER_AUTO_POSITION = 0",
  );
});

Deno.test("CHANGE REPLICATION SOURCE TO on MySQL 8.0.23+, with options", () => {
  assert.equal(
    changeSourceSql(MYSQL_84, {
      ...TARGET,
      options: [{ key: "SSL", value: 1 }, { key: "SSL_CA", value: "/etc/ssl/ca.pem" }],
    }),
    "CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'prm2', SOURCE_PORT = 3306, SOURCE_USER = 'repl', " +
      "SOURCE_PASSWORD = 'pw', SOURCE_LOG_FILE = 'mysql-bin.000003', SOURCE_LOG_POS = 1234, " +
      "SOURCE_AUTO_POSITION = 0, SOURCE_SSL = 1, SOURCE_SSL_CA = '/etc/ssl/ca.pem'",
  );
});

Deno.test("GTID mode builders", () => {
  const gtid = { host: "h", port: 3306, user: "u", password: "p", gtid: true };
  assert.equal(
    changeSourceSql(MARIADB_1011, gtid),
    "CHANGE MASTER TO MASTER_HOST = 'h', MASTER_PORT = 3306, MASTER_USER = 'u', " +
      "MASTER_PASSWORD = 'p', MASTER_USE_GTID = slave_pos",
  );
  assert.equal(
    changeSourceSql(MYSQL_8023, gtid),
    "CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'h', SOURCE_PORT = 3306, SOURCE_USER = 'u', " +
      "SOURCE_PASSWORD = 'p', SOURCE_AUTO_POSITION = 1",
  );
  assert.deepEqual(semiSyncVariables(MARIADB_1011), {
    source: "rpl_semi_sync_master_enabled",
    replica: "rpl_semi_sync_slave_enabled",
  });
  assert.deepEqual(semiSyncVariables(parseFlavour("8.0.26")), {
    source: "rpl_semi_sync_source_enabled",
    replica: "rpl_semi_sync_replica_enabled",
  });
  assert.equal(semiSyncVariables(MYSQL_8023).source, "rpl_semi_sync_master_enabled");
});

Deno.test("GTID state, gtid_slave_pos and MySQL GTID_SUBSET/GTID_SUBTRACT (MySQL untested live)", () => {
  assert.match(gtidStateSql(MARIADB_1011), /gtid_slave_pos AS slave_pos.*gtid_binlog_pos/);
  assert.match(gtidStateSql(MARIADB_1011), /gtid_strict_mode AS strict.*log_slave_updates AS lsu/);
  assert.match(gtidStateSql(MYSQL_84), /gtid_executed AS executed.*log_replica_updates AS lsu/);
  assert.match(gtidStateSql(MYSQL_8023), /@@global\.log_slave_updates AS lsu/);
  assert.equal(setGtidSlavePosSql("0-1-100,1-2-3"), "SET GLOBAL gtid_slave_pos = '0-1-100,1-2-3'");
  assert.equal(setGtidSlavePosSql(""), "SET GLOBAL gtid_slave_pos = ''");
  assert.throws(() => setGtidSlavePosSql("0-1-1'; DROP TABLE x; --"), /unexpected/);
  const u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
  assert.equal(
    gtidSubsetSql(`${u}:1-5`, `${u}:1-10`),
    `SELECT GTID_SUBSET('${u}:1-5', '${u}:1-10') AS subset`,
  );
  assert.equal(
    gtidSubtractSql(`${u}:1-12`, `${u}:1-10`),
    `SELECT GTID_SUBTRACT('${u}:1-12', '${u}:1-10') AS errant`,
  );
  assert.throws(() => gtidSubsetSql("x'); DROP", ""), /unexpected/);
  assert.equal(serverIdentitySql(MARIADB_1011), "SELECT @@global.server_id AS id");
  assert.equal(serverIdentitySql(MYSQL_84), "SELECT @@global.server_uuid AS id");
  // MySQL 8.0.23+ START REPLICA and GTID auto-positioning with options.
  assert.equal(startReplicaSql(MYSQL_84), "START REPLICA");
  assert.equal(
    changeSourceSql(MYSQL_84, {
      host: "db2",
      port: 3307,
      user: "repl",
      password: "it's",
      gtid: true,
      options: [{ key: "SSL", value: 1 }],
    }),
    "CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'db2', SOURCE_PORT = 3307, SOURCE_USER = 'repl', " +
      "SOURCE_PASSWORD = 'it\\'s', SOURCE_AUTO_POSITION = 1, SOURCE_SSL = 1",
  );
  assert.match(
    changeSourceSql(MYSQL_57, { host: "h", port: 1, user: "u", password: "p", gtid: true }),
    /^CHANGE MASTER TO .*MASTER_AUTO_POSITION = 1$/,
  );
});

Deno.test("semi-sync statements: MariaDB built in, MySQL plugins (MySQL untested live)", () => {
  assert.deepEqual(semiSyncSql(MARIADB_1011, "source", { timeoutMs: 10_000 }), [
    "SET GLOBAL rpl_semi_sync_master_timeout = 10000",
    "SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC'",
    "SET GLOBAL rpl_semi_sync_master_enabled = ON",
    "SET GLOBAL rpl_semi_sync_slave_enabled = OFF",
  ]);
  assert.deepEqual(semiSyncSql(MARIADB_1011, "replica", { timeoutMs: 10_000 }), [
    "SET GLOBAL rpl_semi_sync_slave_enabled = ON",
    "SET GLOBAL rpl_semi_sync_master_enabled = OFF",
  ]);
  assert.equal(semiSyncPlugin(MARIADB_1011, "source"), undefined);
  assert.deepEqual(semiSyncPlugin(MYSQL_84, "source"), {
    name: "rpl_semi_sync_source",
    install: "INSTALL PLUGIN rpl_semi_sync_source SONAME 'semisync_source.so'",
  });
  assert.deepEqual(semiSyncPlugin(MYSQL_84, "replica"), {
    name: "rpl_semi_sync_replica",
    install: "INSTALL PLUGIN rpl_semi_sync_replica SONAME 'semisync_replica.so'",
  });
  assert.equal(semiSyncPlugin(MYSQL_8023, "source")?.name, "rpl_semi_sync_master");
  assert.equal(
    semiSyncPlugin(MYSQL_57, "replica")?.install,
    "INSTALL PLUGIN rpl_semi_sync_slave SONAME 'semisync_slave.so'",
  );
  assert.deepEqual(semiSyncSql(MYSQL_84, "source", { timeoutMs: 500 }), [
    "SET GLOBAL rpl_semi_sync_source_timeout = 500",
    "SET GLOBAL rpl_semi_sync_source_wait_point = 'AFTER_SYNC'",
    "SET GLOBAL rpl_semi_sync_source_enabled = ON",
  ]);
  assert.deepEqual(semiSyncSql(MYSQL_84, "replica", { timeoutMs: 500 }), [
    "SET GLOBAL rpl_semi_sync_replica_enabled = ON",
  ]);
  assert.deepEqual(semiSyncOffSql(MARIADB_1011), [
    "SET GLOBAL rpl_semi_sync_master_enabled = OFF",
    "SET GLOBAL rpl_semi_sync_slave_enabled = OFF",
  ]);
  assert.throws(() => semiSyncSql(MARIADB_1011, "source", { timeoutMs: -1 }), /non-negative/);
  assert.equal(
    pluginActiveSql("rpl_semi_sync_source"),
    "SELECT COUNT(*) AS n FROM information_schema.PLUGINS WHERE PLUGIN_NAME = " +
      "'rpl_semi_sync_source' AND PLUGIN_STATUS = 'ACTIVE'",
  );
});

Deno.test("hostile values are escaped, never pasted", () => {
  assert.equal(quoteString(`a'b"c\\d\0e\nf\rg\x1ah`), `'a\\'b\\"c\\\\d\\0e\\nf\\rg\\Zh'`);
  const sql = changeSourceSql(MARIADB_1011, {
    ...TARGET,
    host: "h'; DROP TABLE t; --",
    user: "u\\",
    password: "p'\0\n",
  });
  assert.ok(sql.includes(`MASTER_HOST = 'h\\'; DROP TABLE t; --'`), sql);
  assert.ok(sql.includes(`MASTER_USER = 'u\\\\'`), sql);
  assert.ok(sql.includes(`MASTER_PASSWORD = 'p\\'\\0\\n'`), sql);
  assert.throws(() => changeSourceSql(MARIADB_1011, { ...TARGET, file: "x'; DROP" }));
  assert.throws(() => changeSourceSql(MARIADB_1011, { ...TARGET, file: "../etc/passwd" }));
  assert.throws(() => changeSourceSql(MARIADB_1011, { ...TARGET, pos: -1 }));
  assert.throws(() => changeSourceSql(MARIADB_1011, { ...TARGET, port: 1.5 }));
  assert.throws(() => changeSourceSql(MARIADB_1011, { ...TARGET, file: undefined }));
  assert.equal(quoteIdentifier("a`b"), "`a``b`");
  assert.equal(testTableSql("mysql.user"), "SELECT 1 FROM `mysql`.`user` LIMIT 1");
  assert.equal(killConnectionSql(42), "KILL CONNECTION 42");
  assert.throws(() => killConnectionSql(NaN));
});

Deno.test("NO_BACKSLASH_ESCAPES sessions get quotes doubled and everything else as it is", () => {
  const nbe = { noBackslashEscapes: true };
  assert.equal(quoteString(`a'b"c\\d\0e\nf`, nbe), `'a''b"c\\d\0e\nf'`);
  assert.equal(quoteString("''", nbe), "''''''");
  // Plain values read the same in both modes (heartbeat.ts's constants rely on it).
  for (const v of ["%Y-%m-%d %H:%i:%s.%f", "percona", "0-1-5,1-2-7", ""]) {
    assert.equal(quoteString(v, nbe), quoteString(v), v);
  }
  const target = { ...TARGET, password: "Tr0ub4dor'and-SECRET-tail", user: "r\\u" };
  const sql = changeSourceSql(MARIADB_1011, target, nbe);
  assert.ok(sql.includes(`MASTER_PASSWORD = 'Tr0ub4dor''and-SECRET-tail'`), sql);
  assert.ok(sql.includes(`MASTER_USER = 'r\\u'`), sql);
  assert.equal(changeSourceSql(MARIADB_1011, target), changeSourceSql(MARIADB_1011, target, {}));
  assert.ok(changeSourceSql(MARIADB_1011, target).includes(`'Tr0ub4dor\\'and-SECRET-tail'`));
  // The forms a secret takes in a statement, for redaction.
  assert.deepEqual(quotedForms(`a'b\\c`), [`a'b\\c`, `a\\'b\\\\c`, `a''b\\c`]);
  assert.deepEqual(quotedForms("plain"), ["plain"]);
  assert.equal(
    backslashEscapesSessionSql(),
    "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
  );
});

Deno.test("replica status rows normalise from both vocabularies", () => {
  const mariadb = normalizeReplicaStatus({
    Master_Host: "prm1",
    Master_Port: 3306,
    Slave_IO_Running: "Yes",
    Slave_SQL_Running: "Yes",
    Last_IO_Errno: 0,
    Last_IO_Error: "",
    Last_SQL_Errno: 0,
    Last_SQL_Error: "",
    Seconds_Behind_Master: 3,
    Master_Log_File: "mysql-bin.000002",
    Read_Master_Log_Pos: 900,
    Relay_Master_Log_File: "mysql-bin.000002",
    Exec_Master_Log_Pos: 800,
    Slave_SQL_Running_State: "Slave has read all relay log",
    Gtid_IO_Pos: "0-1-5",
  });
  const mysql = normalizeReplicaStatus({
    Source_Host: "prm1",
    Source_Port: 3306,
    Replica_IO_Running: "Yes",
    Replica_SQL_Running: "Yes",
    Last_IO_Errno: 0,
    Last_IO_Error: "",
    Last_SQL_Errno: 0,
    Last_SQL_Error: "",
    Seconds_Behind_Source: 3,
    Source_Log_File: "mysql-bin.000002",
    Read_Source_Log_Pos: 900,
    Relay_Source_Log_File: "mysql-bin.000002",
    Exec_Source_Log_Pos: 800,
    Replica_SQL_Running_State: "Slave has read all relay log",
    Retrieved_Gtid_Set: "0-1-5",
  });
  assert.deepEqual(mysql, mariadb);
  assert.equal(mariadb.sqlRunning, true);
  assert.equal(mariadb.secondsBehind, 3);
  assert.equal(normalizeReplicaStatus({ Seconds_Behind_Master: null }).secondsBehind, null);
});

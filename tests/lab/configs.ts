/**
 * Text of the lab's configuration files: corosync.conf, the seed cib.xml, my.cnf, the credentials
 * file, the hosts file and the SQL that creates the MariaDB accounts. Pure functions.
 *
 * @module
 */

import {
  type Credentials,
  NET_PREFIX,
  nodeAddress,
  nodeIndex,
  STATE_DIR,
  subnetOf,
} from "./nodes.ts";

/** The VIP range of a subnet (writer .100, readers .101-.105): every MariaDB also listens there. */
export function vipRange(subnet: string): string[] {
  return Array.from({ length: 6 }, (_, i) => `${subnet}.${100 + i}`);
}

/** The one-site lab's VIP range. */
export const VIP_RANGE: string[] = vipRange(NET_PREFIX);

/**
 * corosync.conf for the given nodes (knet, one vote each, token 2000 ms); a two-site lab has one
 * cluster per site, each with its own name.
 */
export function corosyncConf(nodes: string[], clusterName = "prmlab"): string {
  const nodeBlocks = nodes.map((n) =>
    [
      "  node {",
      `    ring0_addr: ${nodeAddress(n)}`,
      `    name: ${n}`,
      `    nodeid: ${nodeIndex(n)}`,
      "  }",
    ].join("\n")
  ).join("\n");
  const quorum = nodes.length === 2
    ? "  provider: corosync_votequorum\n  two_node: 1"
    : "  provider: corosync_votequorum";
  return `totem {
  version: 2
  cluster_name: ${clusterName}
  transport: knet
  token: 2000
  crypto_cipher: none
  crypto_hash: none
}
nodelist {
${nodeBlocks}
}
quorum {
${quorum}
}
logging {
  to_logfile: yes
  logfile: /var/log/pacemaker/corosync.log
  to_syslog: no
  to_stderr: no
  timestamp: on
}
`;
}

/**
 * The CIB every node starts from: short dc-deadtime, fencing on, and one stonith device of the lab's
 * fence agent that can fence every node.
 */
export function seedCib(nodes: string[]): string {
  return `<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="opt-cluster-name" name="cluster-name" value="prmlab"/>
        <nvpair id="opt-dc-deadtime" name="dc-deadtime" value="5s"/>
        <nvpair id="opt-stonith-enabled" name="stonith-enabled" value="true"/>
        <nvpair id="opt-stonith-timeout" name="stonith-timeout" value="30s"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources>
      <primitive id="fence_lab" class="stonith" type="fence_prm_lab">
        <instance_attributes id="fence_lab-ia">
          <nvpair id="fence_lab-hosts" name="pcmk_host_list" value="${nodes.join(" ")}"/>
          <nvpair id="fence_lab-check" name="pcmk_host_check" value="static-list"/>
          <nvpair id="fence_lab-dir" name="request_dir" value="${STATE_DIR}/fence"/>
        </instance_attributes>
        <operations>
          <op id="fence_lab-monitor" name="monitor" interval="60s" timeout="20s"/>
        </operations>
      </primitive>
    </resources>
    <constraints/>
  </configuration>
  <status/>
</cib>
`;
}

/**
 * /etc/mysql/my.cnf of a node. It listens on the node's address and on the lab's VIP range (the
 * node's namespace allows non-local binds), so that a VIP moved onto the node reaches it.
 */
export function myCnf(node: string): string {
  return `# prm lab: MariaDB of node ${node}
[client]
socket = /run/mysqld/mysqld.sock

[mysqld]
user = mysql
datadir = /var/lib/mysql
socket = /run/mysqld/mysqld.sock
pid-file = /run/mysqld/mysqld.pid
port = 3306
bind-address = ${[nodeAddress(node), ...vipRange(subnetOf(node))].join(",")}
server-id = ${nodeIndex(node)}
report-host = ${node}
log-bin = mysql-bin
log-slave-updates = ON
relay-log = relay-bin
relay-log-purge = 0
binlog-format = ROW
sync-binlog = 1
innodb-flush-log-at-trx-commit = 1
skip-name-resolve
innodb-buffer-pool-size = 32M
innodb-log-file-size = 16M
max-connections = 40
performance-schema = OFF
log-error = /var/log/mysql/error.log
character-set-server = utf8mb4
`;
}

/** /etc/mysql/prm.cnf: the administrative account for clients (mode 0600). */
export function credentialsCnf(c: Credentials): string {
  return `# prm lab credentials (read by the agent's credentials_file parameter)
[client]
user = ${c.admin.user}
password = ${c.admin.password}
socket = /run/mysqld/mysqld.sock

[replication]
user = ${c.repl.user}
password = ${c.repl.password}
`;
}

/** The lab's /etc/hosts, bind-mounted inside every node. */
export function hostsFile(nodes: string[]): string {
  return [
    "127.0.0.1 localhost",
    "::1 localhost ip6-localhost ip6-loopback",
    ...nodes.map((n) => `${nodeAddress(n)} ${n}`),
    "",
  ].join("\n");
}

/** Quotes a string as an SQL literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

/** SQL run once (mariadbd --bootstrap) to create the lab's accounts and test database. */
export function accountsSql(c: Credentials): string {
  const lines = ["FLUSH PRIVILEGES;", "CREATE DATABASE IF NOT EXISTS test;"];
  for (const host of ["%", "localhost"]) {
    const h = sqlString(host);
    lines.push(
      `CREATE USER ${sqlString(c.admin.user)}@${h} IDENTIFIED BY ${sqlString(c.admin.password)};`,
      `GRANT ALL PRIVILEGES ON *.* TO ${sqlString(c.admin.user)}@${h} WITH GRANT OPTION;`,
      `CREATE USER ${sqlString(c.repl.user)}@${h} IDENTIFIED BY ${sqlString(c.repl.password)};`,
      `GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ${sqlString(c.repl.user)}@${h};`,
      `CREATE USER ${sqlString(c.app.user)}@${h} IDENTIFIED BY ${sqlString(c.app.password)};`,
      `GRANT ALL PRIVILEGES ON test.* TO ${sqlString(c.app.user)}@${h};`,
    );
  }
  return lines.join("\n") + "\n";
}

/**
 * `mysql_prm config`'s command line: the help, and the dispatch between the one-site form
 * (config_gen.ts) and the two-site form (config_sites.ts). Only {@linkcode configMain} prints.
 *
 * @module
 */
import { ConfigError, type ConfigOptions, generateConfig, parseConfigArgs } from "./config_gen.ts";
import { isTwoSite, parseTwoSiteArgs, twoSiteText } from "./config_sites.ts";

/** Text of `mysql_prm config --help`. */
export const CONFIG_HELP = `Usage: mysql_prm config [FLAGS]

Print a complete, commented Pacemaker configuration for a MySQL/MariaDB replication cluster run by
the ocf:prm:mysql_prm promotable clone: the clone, a writer VIP that follows the promoted node,
reader VIPs kept on readable replicas, resource and operation defaults, and fencing.

Flags:
  --node NAME=ADDRESS          A cluster node (its corosync/uname name) and its address; repeat for
                               every node, at least two. Node names must resolve to these addresses
                               on every node (the agent replicates from the master by name).
  --writer-vip ADDRESS[/PREFIX]  The writer VIP (IPv4 or IPv6), always on the promoted node.
  --reader-vip ADDRESS[/PREFIX]  A reader VIP, on a node whose reader attribute is at least 1;
                               repeatable; reader VIPs keep away from the master's node and from
                               each other while there are enough readable nodes.
  --vip-nic IFACE              Interface for the VIPs (IPaddr2 nic); default: found from the routes.
  --credentials-file PATH      Absolute path of the my.cnf-style file (mode 0600) with the agent's
                               MySQL user and the replication user's passwords. Required: passwords
                               are never put into the CIB.
  --mode gtid|position         Replication by GTID or by binlog file and position (default position;
                               gtid is written as the agent parameter replication_mode=gtid).
  --semi-sync                  Turn on semi-synchronous replication (agent parameter semi_sync=true).
  --monitor-interval-promoted DURATION    Monitor interval of the promoted role (default 5s).
  --monitor-interval-unpromoted DURATION  Monitor interval of the unpromoted roles (default 7s);
                               must differ from the promoted one (Pacemaker needs distinct intervals).
                               DURATION: a number with ms, s, m, min or h (default unit s).
  --resource NAME              Name of the primitive (default p_mysql); the clone is NAME-clone.
  --param KEY=VALUE            Any other mysql_prm parameter (e.g. max_slave_lag=60,
                               replication_user=repl); repeatable. *_passwd parameters are refused:
                               put passwords into the credentials file.
  --fence-agent AGENT          Fence agent for one stonith device per node (e.g. fence_ipmilan).
                               Without it, placeholder fence_ipmilan devices are written that must be
                               edited before fencing can work.
  --fence-param [NODE:]KEY=VALUE  A fence agent parameter for every device, or with NODE: only for
                               that node's device (e.g. db1:ip=10.1.0.11); repeatable.
  --format crm|pcs|both        Which form to print (default both).
  --lab                        Lab/test cluster only: without --fence-agent, fencing is turned off
                               (stonith-enabled=false). Never use on a cluster holding real data.
  -h, --help                   This text.

Two sites (booth geo cluster; each site its own Pacemaker cluster, an arbitrator beside them):
  --site NAME=ADDRESS[/PREFIX] A site and its booth address (a floating IP in the site's network,
                               run by the cluster with boothd); exactly twice. With --site, every
                               --node, --writer-vip and --reader-vip value ends with @SITE.
  --arbitrator ADDRESS         A booth arbitrator (no Pacemaker, only boothd); at least one.
  --ticket NAME                The booth ticket of the promoted role (default ticket-mysql).
  --ticket-expire SECONDS      Ticket lease (default 60): a site cut off demotes after it, and the
                               other site acquires the ticket after it plus --acquire-after
                               (default 10).
  --booth-timeout SECONDS, --booth-retries N  Booth's resend interval and count (default 3, 5);
                               timeout * (retries + 1) must stay below half the expiry.
  --booth-authfile PATH        Booth's shared key (default /etc/booth/authkey, booth-keygen).
  --booth-config PATH          Where booth.conf lives on every node (default /etc/booth/booth.conf).
  --only booth|SITE            Print only booth.conf, or only one site's configuration.
  It prints booth.conf, then each site's configuration: the same clone, VIPs and fencing as one
  site, plus boothd with its address and rsc_ticket TICKET: CLONE:Promoted loss-policy=demote.

Example:
  mysql_prm config --node db1=10.0.0.11 --node db2=10.0.0.12 --node db3=10.0.0.13 \\
    --writer-vip 10.0.0.100/24 --reader-vip 10.0.0.101/24 --reader-vip 10.0.0.102/24 \\
    --credentials-file /etc/mysql/prm.cnf --mode gtid --format crm > prm.crm
  crm configure load update prm.crm

  mysql_prm config ... --format pcs > prm-pcs.sh && sh prm-pcs.sh

  mysql_prm config --site east=10.0.1.90/24 --site west=10.0.2.90/24 --arbitrator 10.0.3.15 \\
    --node db1=10.0.1.11@east --node db2=10.0.1.12@east \\
    --node db3=10.0.2.13@west --node db4=10.0.2.14@west \\
    --writer-vip 10.0.1.100/24@east --writer-vip 10.0.2.100/24@west \\
    --credentials-file /etc/mysql/prm.cnf --format crm --only east > east.crm

Exit status: 0 on success, 2 for a bad flag or value.
`;

/** Output streams of {@linkcode configMain}, replaceable in tests. */
export interface ConfigMainIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const defaultIo: ConfigMainIo = {
  stdout: (text) => Deno.stdout.writeSync(new TextEncoder().encode(text)),
  stderr: (text) => Deno.stderr.writeSync(new TextEncoder().encode(text)),
};

/**
 * Entry point of `mysql_prm config ARGS...`: prints the configuration (or the help) to stdout and
 * returns 0, or prints the problem to stderr and returns 2 for a bad flag or value.
 */
export function configMain(args: string[], io: ConfigMainIo = defaultIo): number {
  if (args.includes("--help") || args.includes("-h")) {
    io.stdout(CONFIG_HELP);
    return 0;
  }
  let options: ConfigOptions;
  try {
    if (isTwoSite(args)) {
      io.stdout(twoSiteText(parseTwoSiteArgs(args)));
      return 0;
    }
    options = parseConfigArgs(args);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`mysql_prm config: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const { crm, pcs } = generateConfig(options);
  if (options.format === "crm") io.stdout(crm);
  else if (options.format === "pcs") io.stdout(pcs);
  else {
    io.stdout(
      `${crm}\n# ${
        "=".repeat(76)
      }\n# pcs form: save the part below as a file and run it with sh.\n# ${
        "=".repeat(76)
      }\n\n${pcs}`,
    );
  }
  return 0;
}

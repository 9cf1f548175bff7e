/**
 * The prm lab: a real Corosync + Pacemaker + MariaDB cluster of 2..5 nodes on this one machine, with
 * fault injection and real fencing. Import everything from this module.
 *
 * ## Layout
 * - Node i is `prm<i>` (hostname and Pacemaker node name) at `10.213.7.1<i>` (`nodeAddress`), in
 *   network namespace `prm-n<i>`, plugged into the host bridge `prmbr0` (host: 10.213.7.1/24) by a
 *   veth (`prmv<i>` on the host, `eth0` inside). Its PID 1 ("holder", tests/lab/node_init.sh) lives in
 *   fresh mount/pid/uts/ipc namespaces with private /run, /dev/shm and bind-mounted per-node
 *   /etc/corosync, /var/lib/corosync, /var/lib/pacemaker, /var/log/pacemaker, /etc/mysql,
 *   /var/lib/mysql (its own tmpfs, 512 MiB by default), /var/log/mysql and a lab /etc/hosts.
 * - Everything lives in ONE state directory, `STATE_DIR` (/var/lib/prm-lab, or $PRM_LAB_STATE):
 *   state.json, credentials.json (0600), hosts, fence/ (requests of the fence agent), fence_loop.pid,
 *   nodes/<node>/{holder.pid, fenced, connections.pid, etc-mysql/, mysql-data/, log-mysql/error.log,
 *   log-pacemaker/{pacemaker.log,corosync.log}, ...}. Host paths of a node: `nodeDir(node)`.
 * - Inside a node: MariaDB config /etc/mysql/my.cnf (server-id = node number, log-bin=mysql-bin,
 *   log_slave_updates, relay-log=relay-bin with relay_log_purge=0, binlog_format=ROW,
 *   bind-address = node address plus the VIP range 10.213.7.100-105 (non-local binds allowed in
 *   the namespace, so a VIP that moves onto the node reaches its MariaDB), 32M buffer pool,
 *   innodb_log_file_size=16M, max_connections=40, sync_binlog=1, no GTID use), socket /run/mysqld/mysqld.sock, pid file
 *   /run/mysqld/mysqld.pid, error log /var/log/mysql/error.log. Accounts (`credentials()`): root via
 *   unix socket; `prm` (ALL, for agents: /etc/mysql/prm.cnf, mode 0600, [client] user/password/socket
 *   and [replication] user/password); `repl` (REPLICATION SLAVE/CLIENT); `app` (ALL on `test` only).
 *   MariaDB is NOT started by `up`: the agent under test starts it (`startMysqld` for lab tests).
 * - Pacemaker: stonith-enabled=true, dc-deadtime=5s, a stonith device `fence_lab`
 *   (stonith:fence_prm_lab, installed in /usr/sbin by `up`) whose host-side loop power-cuts the
 *   target. A fenced node stays off until `boot(node)`. Corosync: knet, token 2000 ms, one vote per
 *   node (two_node for 2). Network faults: `isolate` sets the host side of the node's veth down
 *   (with fencing on, the majority then fences the isolated node: `heal` + `boot` bring it back).
 * - Logs (host paths): nodeDir(n)/log-pacemaker/{pacemaker.log,corosync.log},
 *   nodeDir(n)/log-mysql/error.log, STATE_DIR/fence_loop.log (every fencing, with time).
 * - CLI for people: `deno task lab up|down|status|dump|exec NODE CMD...|fault ... NODE` (cli.ts).
 *
 * ## API (all exported from here)
 * Lifecycle: `up(opts?: UpOptions): Promise<Lab>` ({nodes?, dataSizeMb?, waitFreeMs?, log?,
 * persistent?}; throws `LabBusyError` if a lab is up; a lab belongs to the process that brought it
 * up unless `persistent` (the CLI), and is a leftover for the next `up` to clear once that process
 * is gone; `Lab` = {nodes, addresses, stateDir, credentials, bringUpMs}), `down(opts?)` (always
 * safe, also after a crash), `labIsUp()`, `readState()`,
 * `recordedPids()`, `isLabProcess(pid)`.
 * Nodes: `nodeName(i)`, `nodeAddress(node)`, `nodeDir(node)`, `holderPid(node)`, `nodeRunning(node)`,
 * `exec(node, cmd: string | string[], opts?) → {code, stdout, stderr}` (string = bash -c),
 * `run(argv, opts?)` / `sh(script, opts?)` on the host, `credentials()`.
 * Faults: `killMysqld(node, {withSafe?})`, `freezeMysqld(node)`, `thawMysqld(node)`,
 * `powerCut(node)` (link down, then SIGKILL of the holder), `boot(node, {waitOnline?,
 * timeoutMs?})`, `isolate(node)`, `heal(node)`,
 * `fillDisk(node)`, `unfillDisk(node)`, `exhaustConnections(node) → {count, refusedWith, release()}`,
 * `fenceNode(node, {via?}) → {via, ms}`, `startMysqld(node)`, `stopMysqld(node)`, `mysqldPids(node)`.
 * Cluster: `crmMon(node?) → MonStatus`, `onlineNodes(viewer?)`, `promotedNode(id = "p_mysql")`,
 * `promotedNodes(id?)`, `waitFor(cond, {timeoutMs, what, intervalMs?, onTimeout?})`,
 * `sql(node, query, {user?, database?, params?, timeoutMs?}) → rows` (mysql2 over TCP, default user
 * "admin"), `sqlAt(address, query, opts?)` (e.g. the writer VIP), `sqlSocket(node, query)` (root),
 * `replicaStatus(node)`, `tableChecksums(nodes, tables)`, `compareData(nodes, tables)`,
 * `canPing(node, address)`, `dump()`.
 * Agents: `loadAgent(opts: LoadAgentOptions)` (promotable clone with notify, two monitors, writer VIP
 * colocated with and ordered after the promoted role, reader VIPs on `readable` ≥ 1),
 * `unloadAgent(opts?)`, `agentParams(agent)`; see agent.ts.
 * Benchmark: `measureFailoverRun(lab, {agent: "heartbeat" | "prm", load?, log?})` →
 * `{convergeMs, killToWritableMs, powerCutToWritableMs, rejoinMs, masters, dataEqual, ...}` on a
 * fresh lab (leaves the agent loaded), or `measureFailoverOnFreshLab({agent, nodes?, waitFreeMs?})`
 * which brings its own lab up and down (failover.ts).
 * Sharing the machine: `up({waitFreeMs})` waits for someone else's lab to go down instead of
 * refusing (tests read PRM_LAB_WAIT_MS); `withLabLock(fn)` + `cleanupLocked(log)` for cleanup tests.
 *
 * @example
 * ```ts
 * import { down, loadAgent, promotedNode, up, waitFor } from "./lab.ts";
 * const lab = await up({ nodes: 3 });
 * try {
 *   await loadAgent({ agent: "heartbeat" });
 *   const master = await waitFor(() => promotedNode(), { timeoutMs: 60_000, what: "a master" });
 *   console.log(master, lab.bringUpMs);
 * } finally {
 *   await down();
 * }
 * ```
 *
 * @module
 */

export * from "./nodes.ts";
export * from "./cluster.ts";
export * from "./faults.ts";
export * from "./fencing.ts";
export * from "./lifecycle.ts";
export * from "./agent.ts";
export * from "./failover.ts";
export * from "./sites.ts";

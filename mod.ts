/**
 * prm: the Percona Replication Manager library API.
 *
 * The two programs are `agent.ts` (the OCF agent `mysql_prm`) and `binlog.ts` (the parser
 * `prm_binlog_parser`); this module re-exports the pieces they are built from.
 *
 * @module
 */
export * from "./binlog.ts";
export * from "./ocf.ts";
export * from "./params.ts";
export * from "./sql.ts";
export * from "./mysql.ts";
export * from "./mysqld.ts";
export * from "./cib.ts";
export * from "./election.ts";
export * from "./resync.ts";
export * from "./remote_binlog.ts";
export * from "./resync_agent.ts";
export * from "./salvage.ts";
export * from "./config_gen.ts";
export * from "./gtid.ts";
export * from "./gtid_agent.ts";
export * from "./status.ts";
export * from "./heartbeat.ts";
export { main as agentMain, VERSION as AGENT_VERSION } from "./agent.ts";

/**
 * prm, the Percona Replication Manager, as a library: the parts a program besides the two of
 * this project (`agent.ts`, the OCF agent `mysql_prm`; `binlog.ts`, `prm_binlog_parser`) can
 * build on. A deliberate list, not everything: the agent's internals (its run record, actions,
 * the failover protocol) are not an API.
 *
 * - The binlog parser: transactions of binary and relay logs with their end positions and MD5s.
 * - The resync rule: where a replica resumes in a new master's binary log, locally or by reading
 *   it over the replication protocol.
 * - The vocabulary: positions, the cluster's names and their codecs, GTID set arithmetic.
 * - The election: replica health, candidacy, the promote-time check.
 * - The operator's tools: cluster status (and its metrics), switchover, configuration generation.
 *
 * @example
 * ```ts
 * import { tailTransactions } from "./mod.ts";
 * const last = await tailTransactions(["/var/lib/mysql/relay-bin.000002"], 64);
 * console.log(last.map((t) => `${t.end},${t.md5}`).join("\n"));
 * ```
 *
 * @module
 */

// The binlog parser.
export {
  BinlogError,
  type BinlogErrorKind,
  type BinlogSource,
  type BinlogStream,
  type BinlogTransaction,
  EXIT_CODES,
  type ReadEnd,
  type ReadOptions,
  readTransactions,
  type TailResult,
  tailTransactions,
  tailWithEnd,
} from "./binlog.ts";

// The resync rule and the remote search.
export {
  BackwardResumeSearch,
  chooseTrailing,
  DEFAULT_MIN_RUN,
  findResumePointIn,
  type MasterTransaction,
  type MatchOptions,
  type RefusalReason,
  type ResumeDecision,
  ResumeMatcher,
  type TrailingTransaction,
} from "./resync.ts";
export {
  BinlogMissingError,
  findResumePoint,
  type FindResumePointOptions,
  type ResumeSearch,
  walkBackward,
} from "./remote_binlog.ts";

// The vocabulary.
export {
  type BinlogPosition,
  comparePositions,
  type Coordinates,
  decodeCoordinates,
  encodeCoordinates,
  formatPosition,
  isBinlogName,
  isValidHost,
  parsePosition,
  previousBinlogName,
} from "./position.ts";
export {
  type AttributeNames,
  attributeNames,
  decodeNotPromotable,
  decodeReplInfo,
  encodeReplInfo,
  NOT_PROMOTABLE,
  type NotPromotable,
  type ReplInfo,
  SCORE,
} from "./attrs.ts";
export * from "./gtid.ts";

// The election.
export {
  assessReplica,
  type Candidacy,
  checkPromotee,
  type PeerPosition,
  relayApplied,
  replicaCandidacy,
  type ReplicaHealth,
  type ReplicaState,
} from "./election.ts";

// Parameters, credentials, SQL and the OCF vocabulary.
export { type AgentParams, metadataXml, PARAM_DEFAULTS, PARAMS, resolveParams } from "./params.ts";
export { type Credentials, parseCredentialsFile } from "./credentials.ts";
export { OCF, type OcfCode, type OcfContext, readContext } from "./ocf.ts";
export { type Flavour, parseFlavour, quoteIdentifier, quoteString } from "./sql.ts";

// The operator's tools and the agent's entry point.
export { collectStatus, renderText, type StatusReport } from "./status.ts";
export { renderMetrics } from "./metrics.ts";
export { planSwitchover, runSwitchover, type SwitchoverResult } from "./switchover.ts";
export { type ConfigOptions, generateConfig, parseConfigArgs } from "./config_gen.ts";
export { generateTwoSiteConfig, parseTwoSiteArgs, type TwoSiteOptions } from "./config_sites.ts";
export { main as agentMain, VERSION as AGENT_VERSION } from "./agent.ts";

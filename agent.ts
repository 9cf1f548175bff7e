/**
 * mysql_prm: the OCF resource agent for MySQL/MariaDB replication as a Pacemaker promotable clone
 * (and as a plain resource: one writable server), and the operator's `status` and `config`
 * commands. This file is the entry point: it reads the context, builds the run (run.ts) and
 * dispatches to one function per action:
 *
 * | action                               | module       |
 * | ------------------------------------ | ------------ |
 * | start, stop, monitor, demote, validate-all | lifecycle.ts |
 * | promote, notify (the failover protocol) | failover.ts |
 * | reload-agent                         | reload.ts    |
 * | meta-data, usage, --help             | params.ts    |
 * | status, config, switchover           | status.ts, config_cli.ts, switchover.ts |
 *
 * Run as `mysql_prm ACTION` (installed) or `deno run -A agent.ts ACTION`.
 *
 * @module
 */

import { configMain } from "./config_cli.ts";
import { actionNotify, actionPromote } from "./failover.ts";
import {
  actionDemote,
  actionMonitor,
  actionStart,
  actionStop,
  actionValidate,
} from "./lifecycle.ts";
import { describeError } from "./mysql.ts";
import { serverPid } from "./mysqld.ts";
import {
  clonePromotableProblems,
  codeName,
  Logger,
  OCF,
  type OcfCode,
  readContext,
} from "./ocf.ts";
import { helpText, metadataXml } from "./params.ts";
import { failWith, reportProblems, setup } from "./run.ts";
import { actionReloadAgent } from "./reload.ts";
import { statusMain } from "./status.ts";
import { switchoverMain } from "./switchover.ts";

export { NOTIFICATIONS_ACTED_ON } from "./failover.ts";

/** The agent's version, shown in meta-data. */
export const VERSION = "0.1.0";

const USAGE =
  "Usage: mysql_prm {start|stop|monitor|promote|demote|notify|validate-all|reload-agent|meta-data|usage|--help}\n" +
  "       mysql_prm status [--format text|json|openmetrics|prometheus] [--help]\n" +
  "       mysql_prm switchover [--to NODE] [--timeout DURATION] [--help]\n" +
  "       mysql_prm config [FLAGS] [--help]";

/**
 * The actions a promotable clone with a wrong shape (notify off, promoted-max above 1) refuses,
 * as PAF does. Monitor, demote, stop and notify go on, so that editing a running clone's meta
 * attributes never takes its master down; the monitor says what is wrong at every run.
 */
const REFUSED_FOR_CLONE_SHAPE = new Set(["validate-all", "start", "promote", "reload-agent"]);

/** The actions that act on the server. */
const ACTIONS = ["start", "stop", "monitor", "promote", "demote", "notify"] as const;
type Action = typeof ACTIONS[number];

function isAction(name: string): name is Action {
  return (ACTIONS as readonly string[]).includes(name);
}

// ---------------------------------------------------------------------------------------------
// Dispatch

/** Runs one action and returns its OCF exit code. */
export async function main(args: string[], env = Deno.env.toObject()): Promise<number> {
  const action = args[0] ?? env.__OCF_ACTION ?? "";
  switch (action) {
    case "meta-data":
      console.log(metadataXml(VERSION));
      return OCF.SUCCESS;
    case "--help":
    case "-h":
    case "help":
      console.log(helpText());
      return OCF.SUCCESS;
    case "usage":
      console.log(USAGE);
      return OCF.SUCCESS;
    case "config":
      return configMain(args.slice(1));
    case "status":
      return await statusMain(args.slice(1));
    case "switchover":
      return await switchoverMain(args.slice(1));
  }
  const ctx = readContext(env, { action });
  const log = new Logger(`mysql_prm(${ctx.resource})[${action}]`, { debug: ctx.debug });
  const { run, problems } = setup(ctx, log);
  const shape = clonePromotableProblems(ctx);
  if (REFUSED_FOR_CLONE_SHAPE.has(action)) problems.push(...shape);
  else if (action === "monitor") { for (const p of shape) log.error(p.message); }
  if (action === "validate-all") return actionValidate(run, problems);
  if (action === "reload-agent") return await actionReloadAgent(run, problems);
  if (!isAction(action)) {
    console.error(USAGE);
    return OCF.ERR_UNIMPLEMENTED;
  }
  if (problems.length > 0) {
    // The configured login or nothing: with a problem no action logs in as anybody else.
    // stop still stops the server by its pid; a monitor still tells a stopped server apart;
    // notify says nothing (the monitor reports the problem with its code).
    if (action === "monitor" && serverPid(run.layout) === undefined) return OCF.NOT_RUNNING;
    if (action === "notify") {
      for (const p of problems) log.error(p.message);
      return OCF.SUCCESS;
    }
    if (action !== "stop") return reportProblems(log, problems);
    for (const p of problems) log.warn(p.message);
  }
  const t0 = Date.now();
  let code: OcfCode;
  try {
    switch (action) {
      case "start":
        code = await actionStart(run);
        break;
      case "stop":
        code = await actionStop(run);
        break;
      case "monitor":
        code = await actionMonitor(run);
        break;
      case "promote":
        code = await actionPromote(run);
        break;
      case "demote":
        code = await actionDemote(run);
        break;
      default:
        code = await actionNotify(run);
    }
  } catch (err) {
    code = action === "notify"
      ? OCF.SUCCESS
      : failWith(run, OCF.ERR_GENERIC, `Unexpected error: ${describeError(err)}`);
  }
  run.cib.save();
  const level = action === "monitor" && (code === OCF.SUCCESS || code === OCF.RUNNING_PROMOTED)
    ? "debug"
    : "info";
  log[level](`${action} -> ${codeName(code)} in ${Date.now() - t0} ms`);
  return code;
}

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}

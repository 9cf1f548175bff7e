/**
 * reload-agent (OCF 1.1): Pacemaker runs it instead of a restart when only parameters marked
 * `reloadable` changed (params.ts). The agent reads its parameters at every action, so most of
 * them take effect at the next monitor by themselves (max_slave_lag, evict_outdated_slaves,
 * reader_failcount, test_table, unresponsive_timeout, async_stop, post_promote_script,
 * enable_creation, and the agent's own login: credentials_file, test_user, test_passwd). What
 * lives in the server is applied here: the heartbeat writer on the promoted node (started,
 * re-created with a new table or interval, or disabled), and the semi-sync settings of this
 * node's role. mysqld is never restarted; a login that does not work fails the reload.
 *
 * @module
 */

import { heartbeatHook, hostProblems } from "./lifecycle.ts";
import { isClientFailure, withClient } from "./local_server.ts";
import { serverPid } from "./mysqld.ts";
import { OCF, type OcfCode } from "./ocf.ts";
import { PARAMS, type Problem } from "./params.ts";
import { failWith, reportProblems, type Run } from "./run.ts";

/** The names of the parameters a reload-agent applies (the rest need a restart). */
export const RELOADABLE_PARAMS: readonly string[] = PARAMS.filter((p) => p.reloadable).map((p) =>
  p.name
);

/**
 * reload-agent: checks the new parameters, then applies what lives in the running server.
 *
 * @example
 * ```ts
 * // Pacemaker: crm_resource -r p_mysql -p max_slave_lag -v 30 → reload-agent on every node.
 * const code = await actionReloadAgent(run, problems);
 * ```
 */
export async function actionReloadAgent(run: Run, problems: Problem[]): Promise<OcfCode> {
  const all = [...problems, ...hostProblems(run)];
  if (all.length > 0) return reportProblems(run.log, all);
  const shown = PARAMS.filter((p) =>
    p.reloadable && !p.secret && run.ctx.params[p.name] !== undefined
  )
    .map((p) => `${p.name}=${run.ctx.params[p.name]}`);
  run.log.info(`Parameters reloaded without a restart: ${shown.join(" ") || "(defaults)"}`);
  if (serverPid(run.layout) === undefined) return OCF.SUCCESS;
  const applied = await withClient(run, async (c) => {
    const writable = !(await c.readOnly());
    if (!run.ctx.promotable) return "plain resource: nothing to apply in the server";
    const role = writable ? "source" : "replica";
    const acknowledging = writable ? false : await c.semiSyncReplicaEnabled();
    await c.configureSemiSync(run.params.semiSync ? role : undefined, run.params.semiSyncTimeoutMs);
    // A replica registers as semi-sync (or not) when its IO thread connects: the new value
    // takes effect only after the IO thread reconnects. The SQL thread keeps applying.
    let reconnected = "";
    if (!writable && acknowledging !== run.params.semiSync) {
      const status = await c.replicaStatus();
      if (status?.ioRunning === "Yes") {
        await c.stopReplicaIo();
        await c.startReplica();
        reconnected = ", IO thread reconnected";
      }
    }
    if (writable) await heartbeatHook(run, c, run.params.heartbeat ? "start" : "stop");
    return `semi-sync ${run.params.semiSync ? `on as ${role}` : "off"}${reconnected}${
      writable ? `, heartbeat writer ${run.params.heartbeat ? "on" : "off"}` : ""
    }`;
  });
  if (isClientFailure(applied)) {
    return failWith(
      run,
      OCF.ERR_GENERIC,
      `Reload: cannot apply the new parameters to the server: ${applied.error}`,
    );
  }
  run.log.info(`Reload applied: ${applied}`);
  return OCF.SUCCESS;
}

import { up, down } from "./lifecycle.ts";
import { measureFailoverRun } from "./failover.ts";
import { nodeDir } from "./nodes.ts";
const agent = (Deno.args[0] ?? "prm") as "prm" | "heartbeat";
const lab = await up({ nodes: 3, log: console.log });
try {
  const r = await measureFailoverRun(lab, { agent, log: console.log });
  console.log(JSON.stringify(r));
} finally {
  for (const n of lab.nodes) {
    try { Deno.copyFileSync(`${nodeDir(n)}/log-pacemaker/pacemaker.log`, `/tmp/tl/${agent}-${n}.log`); } catch (e) { console.log(e); }
  }
  await down({ log: console.log });
}

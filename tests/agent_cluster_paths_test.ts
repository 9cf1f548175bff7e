/**
 * The agent's cluster paths (promotion scores, private attributes, REPL_INFO, the PAF-style
 * promote re-check, post-promote repointing) against a real mariadbd, with Pacemaker's tools
 * replaced by small shell fakes that keep every attribute in a file (PRM_PCMK_TOOLS_DIR). The
 * fakes implement only the options the agent uses; the lab tests run the real tools.
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import { OCF } from "../ocf.ts";
import { freePort } from "./mariadb_server.ts";
import { trustedTempDir } from "./trusted_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/**
 * The replication password. The Logger masks every 4-character run of a password, also inside
 * the agent's own words, so a test password must share none with them ("replpw" masked the
 * "repl" of "replica").
 */
const REPL_PASSWORD = "Zq7-xw9-Kp2";

/** Fake crm_attribute / attrd_updater / crm_node over a directory of files (one per attribute). */
function fakeTools(store: string): Record<string, string> {
  const common = `#!/bin/bash
STORE=${store}
key() { printf '%s' "$1" | tr -c 'A-Za-z0-9_.-' '_'; }
`;
  return {
    crm_node: common + `case "$1" in -n) echo nodeA;; -p) echo nodeA nodeB nodeC;; esac\n`,
    crm_attribute: common + `
node=local; name=""; op=""; val=""; kind=attr
while [ $# -gt 0 ]; do
  case "$1" in
    --promotion=*) kind=score; name="\${1#--promotion=}";;
    -N) node="$2"; shift;;
    -n) name="$2"; shift;;
    -t) kind=prop; shift;;
    -s|-l) shift;;
    -G) op=get;; -q) ;;
    -D) op=del;;
    -v) op=set; val="$2"; shift;;
  esac
  shift
done
f="$STORE/$kind-$(key "$name")-$(key "$node")"
[ "$kind" = prop ] && f="$STORE/prop-$(key "$name")"
case "$op" in
  get) [ -f "$f" ] || { echo "not found" >&2; exit 105; }; cat "$f";;
  set) printf '%s' "$val" > "$f"; echo "$*" >> "$STORE/log";;
  del) rm -f "$f";;
esac
`,
    crm_resource: common + `echo "$*" >> "$STORE/crm_resource.log"
`,
    attrd_updater: common + `
name=""; op=""; val=""; all=0; node=nodeA
while [ $# -gt 0 ]; do
  case "$1" in
    -n) name="$2"; shift;;
    -N) node="$2"; shift;;
    -U) op=set; val="$2"; shift;;
    -D) op=del;;
    -Q) op=get;;
    -A) all=1;;
  esac
  shift
done
case "$op" in
  set) printf '%s' "$val" > "$STORE/priv-$(key "$name")-$node";;
  del) rm -f "$STORE/priv-$(key "$name")-$node";;
  get) for f in "$STORE"/priv-$(key "$name")-*; do
         [ -f "$f" ] || continue
         echo "name=\\"$name\\" host=\\"\${f##*-}\\" value=\\"$(cat "$f")\\""
       done;;
esac
`,
  };
}

interface Setup {
  dir: string;
  store: string;
  env: Record<string, string>;
}

async function makeSetup(): Promise<Setup> {
  const dir = trustedTempDir("prm-agent-cl-", 0o755);
  await Deno.chmod(dir, 0o755);
  const store = `${dir}/cib`;
  await Deno.mkdir(store);
  await Deno.mkdir(`${dir}/tools`);
  for (const [name, text] of Object.entries(fakeTools(store))) {
    await Deno.writeTextFile(`${dir}/tools/${name}`, text, { mode: 0o755 });
    await Deno.chmod(`${dir}/tools/${name}`, 0o755);
  }
  await Deno.writeTextFile(
    `${dir}/my.cnf`,
    `[mysqld]\nserver_id = 11\nlog_bin = mysql-bin\nlog_slave_updates = ON\n` +
      `innodb_buffer_pool_size = 32M\nport = ${freePort()}\nbind-address = 127.0.0.1\n` +
      `skip-name-resolve\nperformance_schema = OFF\n`,
  );
  await Deno.writeTextFile(
    `${dir}/creds.cnf`,
    `[client]\nuser = prm_admin\npassword = adminpw\n[replication]\nuser = repl\npassword = ${REPL_PASSWORD}\n`,
    { mode: 0o600 },
  );
  await Deno.chmod(`${dir}/creds.cnf`, 0o600);
  const env = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    PRM_PCMK_TOOLS_DIR: `${dir}/tools`,
    HA_RSCTMP: `${dir}/state`,
    OCF_RESOURCE_INSTANCE: "p_mysql",
    OCF_RESKEY_CRM_meta_clone: "0",
    OCF_RESKEY_CRM_meta_promotable: "true",
    OCF_RESKEY_CRM_meta_on_node: "nodeA",
    OCF_RESKEY_CRM_meta_timeout: "20000",
    OCF_RESKEY_config: `${dir}/my.cnf`,
    OCF_RESKEY_datadir: `${dir}/data`,
    OCF_RESKEY_pid: `${dir}/run/mysqld.pid`,
    OCF_RESKEY_socket: `${dir}/run/mysqld.sock`,
    OCF_RESKEY_log: `${dir}/error.log`,
    OCF_RESKEY_enable_creation: "true",
    OCF_RESKEY_credentials_file: `${dir}/creds.cnf`,
  };
  return { dir, store, env };
}

async function agent(
  s: Setup,
  action: string,
  extra: Record<string, string> = {},
): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT}agent.ts`, action],
    env: { ...s.env, ...extra },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

function read(s: Setup, name: string): string | undefined {
  try {
    return Deno.readTextFileSync(`${s.store}/${name}`);
  } catch {
    return undefined;
  }
}

async function query(s: Setup, sql: string): Promise<Record<string, unknown>[]> {
  const c = await mysql.createConnection({
    socketPath: `${s.dir}/run/mysqld.sock`,
    user: "prm_admin",
    password: "adminpw",
  });
  try {
    const [rows] = await c.query(sql);
    return Array.isArray(rows) ? rows as Record<string, unknown>[] : [];
  } finally {
    await c.end();
  }
}

const NOTIFY = "OCF_RESKEY_CRM_meta_notify_";

Deno.test("cluster paths with fake Pacemaker tools: scores, election re-check, publish, repoint", async (t) => {
  const s = await makeSetup();
  try {
    await t.step("start is unpromoted and idle; first monitor sets the idle score", async () => {
      const r = await agent(s, "start");
      assert.equal(r.code, OCF.SUCCESS, r.stderr);
      assert.equal(Number((await query(s, "SELECT @@global.read_only AS ro"))[0].ro), 1);
      assert.equal(read(s, "score-p_mysql-local"), "10");
      assert.equal(read(s, "attr-readable-local"), "0");
    });
    await t.step(
      "replicating from a lost master: healthy replica, score 100, not readable",
      async () => {
        // An unreachable master (nothing listens on port 1): the IO thread keeps reconnecting.
        await query(
          s,
          "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=1, MASTER_USER='repl', " +
            `MASTER_PASSWORD='${REPL_PASSWORD}', MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=500, ` +
            "MASTER_CONNECT_RETRY=1",
        );
        await query(s, "START SLAVE");
        const r = await agent(s, "monitor", { OCF_RESKEY_CRM_meta_interval: "3000" });
        assert.equal(r.code, OCF.SUCCESS, r.stderr);
        assert.match(r.stderr, /master unreachable/);
        assert.equal(read(s, "score-p_mysql-local"), "100");
        assert.equal(read(s, "attr-readable-local"), "0");
      },
    );
    await t.step("pre-promote publishes this node's position as a private attribute", async () => {
      // nodeB published more: the promotee steps aside before the promote starts.
      Deno.writeTextFileSync(
        `${s.store}/priv-prm-p_mysql-pos-nodeB`,
        "127.0.0.1|mysql-bin.000003|900",
      );
      const r = await agent(s, "notify", {
        [`${NOTIFY}type`]: "pre",
        [`${NOTIFY}operation`]: "promote",
        [`${NOTIFY}promote_uname`]: "nodeA",
        [`${NOTIFY}active_uname`]: "nodeA nodeB",
        [`${NOTIFY}unpromoted_uname`]: "nodeA nodeB",
      });
      assert.equal(r.code, OCF.SUCCESS, r.stderr);
      assert.equal(read(s, "priv-prm-p_mysql-pos-nodeA"), "127.0.0.1|mysql-bin.000003|500");
      assert.match(
        r.stderr,
        /Election before the promote: nodeB holds more of 127\.0\.0\.1: mysql-bin\.000003:900 > mysql-bin\.000003:500/,
      );
      assert.equal(read(s, "score-p_mysql-nodeB"), "150");
      assert.equal(read(s, "score-p_mysql-local"), "1");
    });
    await t.step("promote refuses when a live peer holds more, and moves the scores", async () => {
      Deno.writeTextFileSync(
        `${s.store}/priv-prm-p_mysql-pos-nodeB`,
        "127.0.0.1|mysql-bin.000003|900",
      );
      const r = await agent(s, "promote");
      assert.equal(r.code, OCF.ERR_GENERIC, r.stderr);
      assert.match(r.stderr, /ocf-exit-reason:Not promoting: nodeB holds more data/);
      assert.match(
        r.stderr,
        /Election: nodeB holds more of 127\.0\.0\.1: mysql-bin\.000003:900 > mysql-bin\.000003:500/,
      );
      assert.equal(read(s, "score-p_mysql-nodeB"), "150");
      assert.equal(read(s, "score-p_mysql-local"), "1");
      assert.equal(read(s, "priv-prm-p_mysql-refused-nodeA"), "stepped-aside");
      assert.equal(
        Number((await query(s, "SELECT @@global.read_only AS ro"))[0].ro),
        1,
        "still read-only",
      );
    });
    await t.step(
      "promote goes on when it holds the most, and publishes before accepting writes",
      async () => {
        Deno.writeTextFileSync(
          `${s.store}/priv-prm-p_mysql-pos-nodeB`,
          "127.0.0.1|mysql-bin.000002|99999",
        );
        const r = await agent(s, "promote");
        assert.equal(r.code, OCF.SUCCESS, r.stderr);
        const [ms] = await query(s, "SHOW MASTER STATUS");
        assert.equal(read(s, "prop-p_mysql_REPL_INFO"), `nodeA|${ms.File}|${ms.Position}`);
        assert.equal(read(s, "score-p_mysql-local"), "1000");
        assert.equal(read(s, "attr-readable-local"), "1");
        assert.deepEqual(await query(s, "SHOW SLAVE STATUS"), [], "replica settings reset");
        assert.equal(Number((await query(s, "SELECT @@global.read_only AS ro"))[0].ro), 0);
        assert.equal(
          (await agent(s, "monitor", { OCF_RESKEY_CRM_meta_interval: "2000" })).code,
          OCF.RUNNING_PROMOTED,
        );
      },
    );
    await t.step(
      "post-promote on the new master cleans up the failed promote of a node that stepped aside",
      async () => {
        Deno.writeTextFileSync(`${s.store}/priv-prm-p_mysql-refused-nodeB`, "stepped-aside");
        Deno.writeTextFileSync(`${s.store}/priv-prm-p_mysql-refused-nodeC`, "1");
        const r = await agent(s, "notify", {
          [`${NOTIFY}type`]: "post",
          [`${NOTIFY}operation`]: "promote",
          [`${NOTIFY}promote_uname`]: "nodeA",
          [`${NOTIFY}active_uname`]: "nodeA nodeB nodeC",
        });
        assert.equal(r.code, OCF.SUCCESS, r.stderr);
        assert.equal(read(s, "crm_resource.log"), "--cleanup -r p_mysql -N nodeB\n");
        assert.equal(read(s, "priv-prm-p_mysql-refused-nodeB"), undefined);
        // A real failure stays for a person to see.
        assert.equal(read(s, "priv-prm-p_mysql-refused-nodeC"), "1");
        assert.match(
          r.stderr,
          /nodeB stepped aside for this node: its failed promote is cleaned up/,
        );
        Deno.removeSync(`${s.store}/priv-prm-p_mysql-refused-nodeC`);
      },
    );
    await t.step(
      "demote, then post-promote of another node repoints to its coordinates",
      async () => {
        assert.equal((await agent(s, "demote")).code, OCF.SUCCESS);
        assert.match(read(s, "priv-prm-p_mysql-final-nodeA") ?? "", /^nodeA\|mysql-bin\.\d+\|\d+$/);
        Deno.writeTextFileSync(`${s.store}/prop-p_mysql_REPL_INFO`, "nodeB|mysql-bin.000007|1234");
        const r = await agent(s, "notify", {
          [`${NOTIFY}type`]: "post",
          [`${NOTIFY}operation`]: "promote",
          [`${NOTIFY}promote_uname`]: "nodeB",
          [`${NOTIFY}promoted_uname`]: "",
        });
        assert.equal(r.code, OCF.SUCCESS, r.stderr);
        const [st] = await query(s, "SHOW SLAVE STATUS");
        assert.equal(st.Master_Host, "nodeB");
        assert.equal(st.Master_Log_File, "mysql-bin.000007");
        assert.equal(Number(st.Read_Master_Log_Pos), 1234);
        // Already a replica of nodeB: a second notification keeps its coordinates.
        const again = await agent(s, "notify", {
          [`${NOTIFY}type`]: "post",
          [`${NOTIFY}operation`]: "promote",
          [`${NOTIFY}promote_uname`]: "nodeB",
        });
        assert.match(again.stderr, /Already a replica of nodeB: keeping its own coordinates/);
      },
    );
    await t.step("a malformed REPL_INFO in the CIB is ignored, never used", async () => {
      Deno.writeTextFileSync(`${s.store}/prop-p_mysql_REPL_INFO`, "nodeC|x'; DROP TABLE t; --|1");
      const r = await agent(s, "notify", {
        [`${NOTIFY}type`]: "post",
        [`${NOTIFY}operation`]: "promote",
        [`${NOTIFY}promote_uname`]: "nodeC",
        OCF_RESKEY_CRM_meta_timeout: "3000",
      });
      assert.equal(r.code, OCF.SUCCESS);
      assert.match(r.stderr, /Ignoring malformed p_mysql_REPL_INFO/);
      const [st] = await query(s, "SHOW SLAVE STATUS");
      assert.equal(st.Master_Host, "nodeB");
    });
    await t.step("stop deletes the score and the reader attribute", async () => {
      assert.equal((await agent(s, "stop")).code, OCF.SUCCESS);
      assert.equal(read(s, "score-p_mysql-local"), undefined);
      assert.equal(read(s, "attr-readable-local"), undefined);
    });
  } finally {
    try {
      const pid = Number(Deno.readTextFileSync(`${s.dir}/run/mysqld.pid`).trim());
      if (pid > 0) Deno.kill(pid, "SIGKILL");
    } catch {
      // Not running.
    }
    await Deno.remove(s.dir, { recursive: true });
  }
});

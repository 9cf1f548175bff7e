/**
 * mysqld.ts against a real mariadbd, without the agent: pid files and process checks (a zombie
 * and a recycled pid are not our server), finding the binary, initialising a datadir, starting
 * the server as the mysql user and waiting until it is ready, stopping it (SIGTERM, then SIGKILL
 * for a server that does not stop; the early return of an asynchronous stop while the old
 * process still runs), cleaning a crashed server's leftovers, and failed starts.
 *
 * Readiness is probed the way the module expects a caller to: here by the server's greeting on
 * its socket; SQL runs through the mariadb client as the OS root (unix_socket login).
 */
import assert from "node:assert/strict";
import {
  binaryVersion,
  cleanLeftovers,
  datadirInitialised,
  executableExists,
  findServerBinary,
  initialiseDatadir,
  type ProbeResult,
  processAlive,
  processState,
  readPidFile,
  type ServerLayout,
  serverPid,
  startServer,
  stopServer,
  systemUserExists,
  tailFile,
  waitExit,
} from "../mysqld.ts";
import { freePort } from "./mariadb_server.ts";
import { killAndWait, waitFor } from "./agent_harness.ts";
import { Budget } from "../budget.ts";
import { trustedTempDir } from "./trusted_dir.ts";

/** The server answers on its socket with a protocol 10 greeting. */
async function greets(socket: string): Promise<ProbeResult> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: socket });
  } catch {
    return "starting";
  }
  const timer = setTimeout(() => conn.close(), 2_000);
  try {
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    return n !== null && n > 4 && buf[4] === 10 ? "up" : "starting";
  } catch {
    return "starting";
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
}

/** Runs SQL as the OS root over the socket; returns the output (tab-separated, no headers). */
async function sql(socket: string, text: string): Promise<string> {
  const out = await new Deno.Command("mariadb", {
    args: ["--no-defaults", "-uroot", `--socket=${socket}`, "-N", "-e", text],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`mariadb -e ${text}: ${err}`);
  return new TextDecoder().decode(out.stdout).trim();
}

function assertGone(...paths: string[]): void {
  for (const p of paths) assert.throws(() => Deno.lstatSync(p), Deno.errors.NotFound, p);
}

function uidOf(user: string): number {
  const line = Deno.readTextFileSync("/etc/passwd").split("\n").find((l) =>
    l.startsWith(`${user}:`)
  );
  return Number(line!.split(":")[2]);
}

/** The real uid a process runs as (/proc/PID/status). */
function processUid(pid: number): number {
  const line = Deno.readTextFileSync(`/proc/${pid}/status`).split("\n").find((l) =>
    l.startsWith("Uid:")
  );
  return Number(line!.split(/\s+/)[1]);
}

async function layoutIn(dir: string): Promise<ServerLayout> {
  await Deno.writeTextFile(
    `${dir}/my.cnf`,
    [
      "[mysqld]",
      "server_id = 1",
      "log_bin = mysql-bin",
      "innodb_buffer_pool_size = 32M",
      `port = ${freePort()}`,
      "bind-address = 127.0.0.1",
      "skip-name-resolve",
      "performance_schema = OFF",
      "",
    ].join("\n"),
  );
  return {
    binary: findServerBinary()!,
    prefix: [],
    config: `${dir}/my.cnf`,
    datadir: `${dir}/data`,
    user: "mysql",
    group: "mysql",
    log: `${dir}/log/error.log`,
    pid: `${dir}/run/mysqld.pid`,
    socket: `${dir}/run/mysqld.sock`,
    extra: [],
  };
}

Deno.test("pid files, leftovers, tails, binaries and users", async () => {
  const dir = trustedTempDir("prm-mysqld-", 0o755);
  try {
    const pidFile = `${dir}/x.pid`;
    assert.equal(readPidFile(pidFile), undefined, "missing");
    Deno.writeTextFileSync(pidFile, "4242\n");
    assert.equal(readPidFile(pidFile), 4242);
    for (const junk of ["", "12ab", "-5", "1234567890", "1 2"]) {
      Deno.writeTextFileSync(pidFile, junk);
      assert.equal(readPidFile(pidFile), undefined, JSON.stringify(junk));
    }

    assert.equal(tailFile(`${dir}/none.log`), "");
    Deno.writeTextFileSync(`${dir}/e.log`, "a\nb\nc\nd\n\n");
    assert.equal(tailFile(`${dir}/e.log`, 2), "c | d");

    // A crashed server's leftovers: pid file, socket and its lock file.
    const layout = await layoutIn(dir);
    Deno.mkdirSync(`${dir}/run`);
    for (const p of [layout.pid, layout.socket, `${layout.socket}.lock`]) {
      Deno.writeTextFileSync(p, "");
    }
    assert.deepEqual(cleanLeftovers(layout), [layout.pid, layout.socket, `${layout.socket}.lock`]);
    assert.deepEqual(cleanLeftovers(layout), []);

    // Binaries: executables only; extra folders first; never mysqld_safe.
    const bin = `${dir}/bin`;
    Deno.mkdirSync(bin);
    Deno.writeTextFileSync(`${bin}/mariadbd`, "#!/bin/sh\n", { mode: 0o644 });
    assert.equal(executableExists(`${bin}/mariadbd`), false);
    assert.equal(findServerBinary([bin]), "/usr/sbin/mariadbd");
    Deno.chmodSync(`${bin}/mariadbd`, 0o755);
    assert.equal(executableExists(`${bin}/mariadbd`), true);
    assert.equal(executableExists(bin), false, "a directory is not an executable");
    assert.equal(findServerBinary([bin]), `${bin}/mariadbd`);
    const version = await binaryVersion("/usr/sbin/mariadbd", Budget.ofMs(10_000));
    assert.equal(version.mariadb, true);
    const printed = await new Deno.Command("/usr/sbin/mariadbd", {
      args: ["--version"],
      stdout: "piped",
    }).output();
    assert.ok(new TextDecoder().decode(printed.stdout).includes(`${version.version}-MariaDB`));

    assert.equal(systemUserExists("mysql"), true);
    assert.equal(systemUserExists("prm-no-such-user"), false);
    assert.equal(datadirInitialised(`${dir}/data`), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("processAlive: a zombie and another program's pid are not a running server", async () => {
  assert.equal(processAlive(Deno.pid), true);
  assert.equal(processAlive(Deno.pid, "/usr/sbin/mariadbd"), false, "a recycled pid");
  // The child of a shell that exec'd into sleep: nobody reaps it once it exits.
  const parent = new Deno.Command("bash", {
    args: ["-c", "sleep 0.05 & echo $!; exec sleep 30"],
    stdout: "piped",
  }).spawn();
  try {
    const reader = parent.stdout.getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    const zombie = Number(new TextDecoder().decode(value).trim());
    await waitFor("the child to exit", () => !processAlive(zombie), { timeoutMs: 5_000 });
    const stat = Deno.readTextFileSync(`/proc/${zombie}/stat`);
    assert.equal(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3), "Z");
    assert.equal(await waitExit(zombie, Date.now() + 1_000), true, "a zombie has exited");
    assert.equal(await waitExit(parent.pid, Date.now() + 300), false, "sleep 30 still runs");
  } finally {
    parent.kill("SIGKILL");
    await parent.status;
    await parent.stdout.cancel().catch(() => {});
  }
  assert.equal(processAlive(parent.pid), false);
});

Deno.test({
  name: "a real server: initialise, start as mysql, stop, escalate, return early, fail to start",
  // startServer spawns the server detached and unref'd: its status op outlives each step.
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const dir = trustedTempDir("prm-mysqld-", 0o755);
  const layout = await layoutIn(dir);
  const pids: number[] = [];
  const start = async (
    options: { probe?: () => Promise<ProbeResult>; timeoutMs?: number } = {},
  ) => {
    const out = await startServer(layout, {
      startArgs: ["--skip-slave-start"],
      deadline: Date.now() + (options.timeoutMs ?? 60_000),
      probe: options.probe ?? (() => greets(layout.socket)),
    });
    if (out.pid !== undefined) pids.push(out.pid);
    return out;
  };
  /** A started server, frozen: a SIGTERM stays pending (a server stuck in I/O); SIGKILL works. */
  const startFrozen = async (): Promise<number> => {
    const started = await start();
    assert.ok(started.ok, started.reason);
    Deno.kill(started.pid!, "SIGSTOP");
    // SIGSTOP takes effect asynchronously (every thread must stop): seen once as 'S' right after
    // the kill, which made the stop treat the server as alive and wait for SIGTERM.
    const until = Date.now() + 10_000;
    while (processState(started.pid!) !== "T") {
      assert.ok(Date.now() < until, `server ${started.pid} not stopped by SIGSTOP`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return started.pid!;
  };
  const mysqlUid = uidOf("mysql");
  try {
    await t.step("initialise: a datadir owned by mysql, with the system schema", async () => {
      const init = await initialiseDatadir(layout, Budget.ofMs(120_000));
      assert.ok(init.ok, init.output);
      assert.equal(datadirInitialised(layout.datadir), true);
      assert.equal(Deno.statSync(layout.datadir).uid, mysqlUid);
    });

    await t.step("start: runs as mysql, ready when it greets, named by its pid file", async () => {
      const out = await start();
      assert.ok(out.ok, out.reason);
      assert.equal(readPidFile(layout.pid), out.pid);
      assert.equal(serverPid(layout), out.pid);
      assert.equal(processUid(out.pid!), mysqlUid);
      for (const d of [`${dir}/run`, `${dir}/log`]) assert.equal(Deno.statSync(d).uid, mysqlUid);
      assert.equal(await sql(layout.socket, "SELECT @@server_id, @@log_bin"), "1\t1");
    });

    await t.step("stop: SIGTERM, the server exits, its files go", async () => {
      const pid = serverPid(layout)!;
      const out = await stopServer(layout, { deadline: Date.now() + 60_000 });
      assert.deepEqual(out, { ok: true, pid });
      assert.equal(processAlive(pid), false);
      assert.equal(serverPid(layout), undefined);
      assertGone(layout.pid, layout.socket);
      // Nothing runs: stop succeeds and clears a crash's leftovers.
      Deno.writeTextFileSync(layout.pid, `${pid}\n`);
      Deno.writeTextFileSync(layout.socket, "");
      assert.deepEqual(await stopServer(layout, { deadline: Date.now() + 5_000 }), { ok: true });
      assertGone(layout.pid, layout.socket);
    });

    await t.step(
      "stop of a frozen server: SIGKILL at once (it cannot act on SIGTERM)",
      async () => {
        const pid = await startFrozen();
        const t0 = Date.now();
        const out = await stopServer(layout, { deadline: t0 + 60_000 });
        assert.equal(out.ok, true);
        assert.equal(out.pid, pid);
        assert.ok(out.reason, "says the server was killed");
        assert.ok(Date.now() - t0 < 5_000, "no wait for a SIGTERM it cannot act on");
        assert.equal(processAlive(pid), false);
        assertGone(layout.pid, layout.socket);
      },
    );

    await t.step(
      "async stop: returns once unreachable, while the old process still runs",
      async () => {
        const pid = await startFrozen();
        let asked = 0;
        const out = await stopServer(layout, {
          deadline: Date.now() + 60_000,
          untilUnreachable: () => Promise.resolve(++asked > 0),
        });
        try {
          assert.deepEqual(out, { ok: true, pid });
          assert.equal(asked, 1);
          // The witness the agent keeps (stoppingPid): the old server is still there.
          assert.equal(processAlive(pid, layout.binary), true);
          assert.equal(await waitExit(pid, Date.now() + 300, layout.binary), false);
        } finally {
          Deno.kill(pid, "SIGCONT");
        }
        // The pending SIGTERM now runs its course.
        assert.equal(await waitExit(pid, Date.now() + 60_000, layout.binary), true);
      },
    );

    await t.step("failed starts: a server that exits, a server never ready", async () => {
      cleanLeftovers(layout);
      const dies = await startServer(layout, {
        startArgs: ["--no-such-option=1"],
        deadline: Date.now() + 60_000,
        probe: () => greets(layout.socket),
      });
      assert.equal(dies.ok, false);
      // The reason carries what the server wrote to its error log during this start.
      assert.match(dies.reason ?? "", /no-such-option/);
      assert.equal(processAlive(dies.pid!), false);

      const never = await start({ probe: () => Promise.resolve("starting"), timeoutMs: 1_500 });
      assert.equal(never.ok, false);
      assert.ok(never.reason);
      // It is left running for the stop that follows a failed start.
      await waitFor("the server's pid file", () => serverPid(layout) === never.pid);
      const stopped = await stopServer(layout, { deadline: Date.now() + 60_000 });
      assert.equal(stopped.ok, true);
      assert.equal(processAlive(never.pid!), false);
    });
  } finally {
    await killAndWait(pids);
    await Deno.remove(dir, { recursive: true });
  }
});

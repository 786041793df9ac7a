// Runs `node scripts/dev.ts` (what `npm start` runs) for real on free ports, isolated with OUTPOST_DEV_DIR, and checks start and stop.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BANNER = "Outpost is running";

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function freePort(): Promise<number> {
  const server = await listen(0);
  const { port } = server.address() as { port: number };
  await close(server);
  return port;
}

async function portIsFree(port: number): Promise<boolean> {
  try {
    await close(await listen(port));
    return true;
  } catch {
    return false;
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

interface Dev {
  proc: ChildProcess;
  dir: string;
  edge: string;
  origin: string;
  edgePort: number;
  originPort: number;
  output(): string;
  /** Process-group leaders dev.ts reported, by tag. */
  pids(): Record<string, number>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(text: string, ms: number): Promise<void>;
}

const running: Dev[] = [];

async function startDev(extraEnv: Record<string, string> = {}): Promise<Dev> {
  const dir = await mkdtemp(join(tmpdir(), "outpost-dev-"));
  const edgePort = await freePort();
  let originPort = await freePort();
  while (originPort === edgePort) originPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OUTPOST_DEV_DIR: dir,
    OUTPOST_EDGE_PORT: String(edgePort),
    OUTPOST_ORIGIN_PORT: String(originPort),
    NO_COLOR: "1",
    ...extraEnv,
  };
  delete env.FORCE_COLOR;
  const proc = spawn(process.execPath, ["scripts/dev.ts"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  proc.stderr!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const dev: Dev = {
    proc,
    dir,
    edgePort,
    originPort,
    edge: `http://127.0.0.1:${edgePort}`,
    origin: `http://127.0.0.1:${originPort}`,
    output: () => out,
    pids: () => Object.fromEntries([...out.matchAll(/\[dev\]\s+(\w+): pid (\d+)/g)].map((m) => [m[1]!, Number(m[2])])),
    exited,
    async waitFor(text, ms) {
      let done = false;
      const found = await Promise.race([until(() => done || out.includes(text), ms), exited.then(() => out.includes(text))]);
      done = true;
      if (!found) throw new Error(`no "${text}" from scripts/dev.ts (exit ${proc.exitCode}):\n${out}`);
    },
  };
  running.push(dev);
  return dev;
}

afterEach(async () => {
  // Whatever a failed test left behind: the script, then every group it started.
  for (const dev of running.splice(0)) {
    if (dev.proc.exitCode === null && dev.proc.signalCode === null) {
      dev.proc.kill("SIGKILL");
      await dev.exited;
    }
    for (const pid of Object.values(dev.pids())) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await rm(dev.dir, { recursive: true, force: true });
  }
});

function realDevVars(): string {
  const path = join(ROOT, ".dev.vars");
  return existsSync(path) ? `${statSync(path).mtimeMs}:${statSync(path).size}` : "absent";
}

describe("npm start (scripts/dev.ts)", () => {
  it("builds, starts origin and edge, serves the app and the proxy, and stops everything on SIGINT", { timeout: 90_000 }, async () => {
    const before = realDevVars();
    const dev = await startDev();
    await dev.waitFor(BANNER, 75_000);
    const out = dev.output();
    expect(out).toContain(`http://localhost:${dev.edgePort}/`);
    expect(out).toMatch(/^\[web\]/m);
    expect(out).toMatch(/^\[origin\]/m);
    expect(out).toMatch(/^\[edge\]/m);

    // The first run wrote its own .dev.vars, private to the user, with the generated key filled in.
    const devVarsPath = join(dev.dir, ".dev.vars");
    expect(statSync(devVarsPath).mode & 0o777).toBe(0o600);
    const devVars = await readFile(devVarsPath, "utf8");
    expect(devVars).toContain("ORIGIN_URL=http://127.0.0.1:8788");
    expect(devVars).not.toMatch(/=\s*["']?<generate:/);
    expect(existsSync(join(dev.dir, "web-dist", "index.html"))).toBe(true);

    const health = await fetch(`${dev.edge}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok", services: { edge: "ok", config: "ok" } });

    // The Worker was pointed at this origin's port (ORIGIN_URL override) and its configuration is valid.
    const ready = (await (await fetch(`${dev.edge}/ready`)).json()) as { checks: Record<string, { ok: boolean }> };
    expect(ready.checks.config?.ok).toBe(true);
    expect(ready.checks.origin?.ok).toBe(true);

    // The proxy needs a signed-in user: the banner's single-use enrollment link, on the moved PUBLIC_URL, is one.
    const link = /Sign in\s+(http:\/\/localhost:(\d+)\/enroll#token=([\w-]+\.[\w-]+\.[\w-]+))/.exec(out);
    expect(link, "the banner's Sign in link").not.toBeNull();
    expect(Number(link![2])).toBe(dev.edgePort);
    const enroll = await fetch(`${dev.edge}/auth/enroll`, { method: "POST", headers: { Authorization: `Bearer ${link![3]}` } });
    expect(enroll.status).toBe(200);
    const { access_token: accessToken } = (await enroll.json()) as { access_token: string };
    expect(typeof accessToken).toBe("string");
    // Single use: the same link does not sign in a second browser.
    const again = await fetch(`${dev.edge}/auth/enroll`, { method: "POST", headers: { Authorization: `Bearer ${link![3]}` } });
    expect(again.status).toBe(401);
    await again.body?.cancel();

    const anonymous = await fetch(`${dev.edge}/api/me`);
    expect(anonymous.status).toBe(401);
    await anonymous.body?.cancel();
    // Through the edge to the origin: the origin verified the edge's assertion for the signed-in owner.
    const me = await fetch(`${dev.edge}/api/me`, { headers: { Authorization: `Bearer ${accessToken}` } });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ email: "owner@localhost", role: "owner" });
    // `npm start` runs the origin as shipped: the tests' diagnostic echo is not there.
    const echo = await fetch(`${dev.edge}/api/echo/x`, { headers: { Authorization: `Bearer ${accessToken}` } });
    expect(echo.status).toBe(404);
    expect(((await echo.json()) as { error: { code: string } }).error.code).toBe("NOT_FOUND");

    const page = await fetch(`${dev.edge}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain("<title>Outpost</title>");
    expect(html).toMatch(/src="\/assets\/[^"]+\.js"/); // the build, not the source index.html
    const spaRoute = await fetch(`${dev.edge}/some/client/route`);
    expect(await spaRoute.text()).toContain("<title>Outpost</title>");

    const pids = dev.pids();
    expect(Object.keys(pids).sort()).toEqual(["edge", "origin", "web"]);

    const started = Date.now();
    dev.proc.kill("SIGINT");
    const exit = await dev.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(10_000);
    for (const [tag, pid] of Object.entries(pids)) expect(groupAlive(pid), `${tag} process group`).toBe(false);
    expect(await until(() => portIsFree(dev.edgePort), 2_000)).toBe(true);
    expect(await until(() => portIsFree(dev.originPort), 2_000)).toBe(true);
    expect(realDevVars()).toBe(before);
  });

  it("stops the rest and exits non-zero when a child dies", { timeout: 90_000 }, async () => {
    const dev = await startDev();
    await dev.waitFor(BANNER, 75_000);
    const pids = dev.pids();
    process.kill(-pids.origin!, "SIGKILL");
    const exit = await dev.exited;
    expect(exit.code).not.toBe(0);
    expect(dev.output()).toMatch(/origin exited unexpectedly/);
    for (const [tag, pid] of Object.entries(pids)) expect(groupAlive(pid), `${tag} process group`).toBe(false);
    expect(await until(() => portIsFree(dev.edgePort), 2_000)).toBe(true);
  });

  it("refuses to start on a busy port and says which setting moves it", async () => {
    const blocker = await listen(0);
    const { port } = blocker.address() as { port: number };
    try {
      const dev = await startDev({ OUTPOST_EDGE_PORT: String(port) });
      const exit = await dev.exited;
      expect(exit.code).toBe(1);
      expect(dev.output()).toMatch(new RegExp(`port ${port} .*in use.*OUTPOST_EDGE_PORT`));
      expect(dev.pids()).toEqual({});
    } finally {
      await close(blocker);
    }
  });
});

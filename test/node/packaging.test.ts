// The package as users get it: `npm pack` ships built "outpost/origin" with declarations, and a fresh project installs it offline and uses it from Hono, Express and tsc.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCli } from "../../cli/build.ts";
import { buildOrigin } from "../../origin/build.ts";
import { TEST_SIGNING_KEY } from "../support/identity.ts";
import { publicJwk } from "../support/spawn-origin.ts";
import { assertion, ISSUER } from "./origin/helpers.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

/** Scripts a user would write, one per framework: /health open, /api/* behind the edge's assertion. */
const APPS = {
  hono: `
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { outpostHono } from "outpost/origin";

const app = new Hono();
app.get("/health", (c) => c.json({ ok: true }));
app.use("/api/*", outpostHono(JSON.parse(process.env.EDGE)));
app.get("/api/me", (c) => c.json(c.get("outpost")));
serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => console.log(info.port));
`,
  express: `
import express from "express";
import { outpostMiddleware } from "outpost/origin";

const app = express();
app.get("/health", (req, res) => res.json({ ok: true }));
app.use("/api", outpostMiddleware(JSON.parse(process.env.EDGE)));
app.get("/api/me", (req, res) => res.json(req.outpost));
const server = app.listen(0, "127.0.0.1", () => console.log(server.address().port));
`,
};

/** A consumer's TypeScript: it must type-check against the shipped declarations, and they must not be `any`. */
const CONSUMER_TS = `
import { Hono } from "hono";
import { createServer } from "node:http";
import { outpostHono, outpostMiddleware, verifyOutpostRequest, type OutpostIdentity, type OutpostRequest, type VerifyOptions } from "outpost/origin";

const options: VerifyOptions = { edgeUrl: "https://outpost.example.com", audience: "origin" };
const app = new Hono<{ Variables: { outpost: OutpostIdentity } }>();
app.use("/api/*", outpostHono(options));
app.get("/api/me", (c) => c.json({ role: c.get("outpost").role }));
const guard = outpostMiddleware(options);
createServer((req: OutpostRequest, res) => guard(req, res, () => res.end(req.outpost?.email)));
export const who = async (request: Request): Promise<string> => (await verifyOutpostRequest(request, options)).sub;
// @ts-expect-error the options are typed
outpostHono({ edgeUrl: 42 });
`;

let work: string;
let consumer: string;
let packed: string[];
let edge: Server;
let edgeUrl: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "outpost-pack-"));
  if (!existsSync(join(ROOT, "cli", "dist", "outpost.mjs"))) await buildCli();
  await buildOrigin();
  // Without scripts: `prepare` would rebuild cli/dist under other tests that run it; what it builds is built above.
  const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], { cwd: ROOT });
  const [result] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  packed = result!.files.map((f) => f.path);

  // The repository's lockfile pins every package to the version `npm ci` left in the npm cache, so the install is served
  // from the cache; --prefer-offline (not --offline) lets npm ask the registry for metadata the cache lacks.
  consumer = join(work, "app");
  mkdirSync(consumer);
  copyFileSync(join(ROOT, "package-lock.json"), join(consumer, "package-lock.json"));
  const own = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Record<string, Record<string, string>>;
  const pick = (deps: Record<string, string>, names: string[]) => Object.fromEntries(names.map((n) => [n, deps[n]!]));
  const dependencies = { ...pick(own.dependencies!, ["hono", "@hono/node-server"]), ...pick(own.devDependencies!, ["express", "@types/node"]) };
  writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module", dependencies }));
  await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", "--omit=optional", join(work, result!.filename)], {
    cwd: consumer,
  });
  for (const [name, source] of Object.entries(APPS)) writeFileSync(join(consumer, `${name}.js`), source);

  edge = createServer((req, res) => {
    if (req.url !== "/.well-known/jwks.json") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [publicJwk(TEST_SIGNING_KEY)] }));
  });
  await new Promise<void>((r) => edge.listen(0, "127.0.0.1", r));
  edgeUrl = `http://127.0.0.1:${(edge.address() as AddressInfo).port}`;
}, 180_000);

afterAll(async () => {
  for (const child of children) child.kill();
  await new Promise((r) => edge?.close(r));
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Starts one of APPS in the consumer project under this Node; resolves with its URL once it listens. */
function startApp(name: keyof typeof APPS): Promise<string> {
  const child = spawn(process.execPath, [`${name}.js`], {
    cwd: consumer,
    env: { ...process.env, EDGE: JSON.stringify({ edgeUrl, issuer: ISSUER, audience: "origin" }) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const port = /^(\d+)\n/.exec(output)?.[1];
      if (port) resolve(`http://127.0.0.1:${port}`);
    });
    child.stderr!.on("data", (chunk: Buffer) => void (output += chunk.toString()));
    child.once("exit", (code) => reject(new Error(`${name}.js exited with ${code}: ${output}`)));
  });
}

describe("npm pack", () => {
  it("ships the built entry with its declarations and the CLI, and no TypeScript sources or tests", () => {
    expect(packed).toEqual(expect.arrayContaining(["package.json", "README.md", "cli/dist/outpost.mjs", "dist/origin/index.js", "dist/origin/index.d.ts"]));
    expect(packed.filter((p) => /\.[cm]?tsx?$/.test(p) && !/\.d\.[cm]?ts$/.test(p))).toEqual([]);
    expect(packed.filter((p) => /^(test|origin|shared|worker|web|durable-objects|scripts|bench)\//.test(p))).toEqual([]);
  });

  it("builds the entry whenever the package is prepared (npm install of a checkout, npm pack, npm publish)", () => {
    const own = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    expect(own.scripts.prepare).toContain("build:origin");
  });

  it("exports outpost/origin as JavaScript with types", () => {
    const installed = JSON.parse(readFileSync(join(consumer, "node_modules", "outpost", "package.json"), "utf8")) as { exports: Record<string, unknown> };
    expect(installed.exports["./origin"]).toEqual({ types: "./dist/origin/index.d.ts", default: "./dist/origin/index.js" });
  });
});

describe.each(Object.keys(APPS) as (keyof typeof APPS)[])("outpost/origin installed from the tarball, with %s", (name) => {
  it("refuses a request without an assertion with the standard 401, lets a verified one and /health through", async () => {
    const url = await startApp(name);
    const refused = await fetch(`${url}/api/me`, { headers: { "x-request-id": "r-pack" } });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: { code: "AUTH_INVALID", message: expect.any(String), requestId: expect.any(String) } });

    const ok = await fetch(`${url}/api/me?x=1`, { headers: { "outpost-assertion": await assertion("GET", "/api/me?x=1") } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ email: "owner@example.com", role: "owner" });

    const health = await fetch(`${url}/health`);
    expect(await health.json()).toEqual({ ok: true });
  });
});

describe("the shipped declarations", () => {
  it("type-check a consumer's TypeScript with the repository's tsc", async () => {
    writeFileSync(join(consumer, "consumer.ts"), CONSUMER_TS);
    const config = {
      compilerOptions: {
        target: "ES2023",
        lib: ["ES2023", "DOM"],
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        types: ["node"],
      },
      files: ["consumer.ts"],
    };
    writeFileSync(join(consumer, "tsconfig.json"), JSON.stringify(config));
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const { stdout } = await run(process.execPath, [tsc, "-p", join(consumer, "tsconfig.json")], { cwd: consumer }).catch(
      (err: Error & { stdout?: string }) => ({ stdout: err.stdout || err.message }),
    );
    expect(stdout).toBe("");
  });
});

// Starts the real origin as a child process on a free loopback port, with the test-only diagnostic routes, and waits until it listens.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { JWK } from "jose";
import { TEST_SIGNING_KEY } from "./identity.ts";

export interface SpawnedOrigin {
  url: string;
  child: ChildProcess;
  /** Where its origin.db lives (a fresh temporary directory unless --data-dir was given). */
  dataDir: string;
  stop(): Promise<void>;
}

/** origin/main.ts's own runOrigin() with test/support/origin-diagnostics.ts mounted; `outpost origin` has no such routes. */
const WITH_DIAGNOSTICS = fileURLToPath(new URL("./origin-main.ts", import.meta.url));
/** The origin exactly as shipped. */
const PRODUCTION = fileURLToPath(new URL("../../origin/main.ts", import.meta.url));

/** The public half of an ES256 JWK. */
export function publicJwk(jwk: JWK): JWK {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid: jwk.kid, alg: "ES256", use: "sig" };
}

/**
 * The environment that makes the origin trust an edge: its public keys (the origin starts before the edge, so they
 * are given, not fetched), its issuer (PUBLIC_URL) and its ORIGIN_AUDIENCE. Defaults: the test stacks' key and settings.
 */
export function trustEdgeEnv(options: { keys?: JWK[]; issuer?: string; audience?: string } = {}): NodeJS.ProcessEnv {
  return {
    OUTPOST_JWKS: JSON.stringify({ keys: (options.keys ?? [TEST_SIGNING_KEY]).map(publicJwk) }),
    OUTPOST_ISSUER: options.issuer ?? "http://localhost:8787",
    ORIGIN_AUDIENCE: options.audience ?? "origin",
    // A developer's own settings never leak into a test origin.
    OUTPOST_EDGE_URL: "",
    OUTPOST_UPSTREAM: "",
  };
}

/** `diagnostics: false` runs origin/main.ts as shipped, without the test-only routes. */
export async function spawnOrigin(args: string[] = [], env: NodeJS.ProcessEnv = {}, options: { diagnostics?: boolean } = {}): Promise<SpawnedOrigin> {
  const ownDir = args.includes("--data-dir") ? null : mkdtempSync(join(tmpdir(), "outpost-origin-"));
  const dataDir = ownDir ?? args[args.indexOf("--data-dir") + 1]!;
  const main = options.diagnostics === false ? PRODUCTION : WITH_DIAGNOSTICS;
  const child = spawn(process.execPath, [main, "--port", "0", ...(ownDir ? ["--data-dir", ownDir] : []), ...args], {
    env: { ...process.env, ...trustEdgeEnv(), NODE_NO_WARNINGS: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const cleanup = () => {
    if (ownDir) rmSync(ownDir, { recursive: true, force: true });
  };
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`origin did not start: ${out}`)), 15_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.once("exit", (code) => {
      clearTimeout(timer);
      cleanup();
      reject(new Error(`origin exited with ${code}: ${out}`));
    });
  });
  return {
    url,
    child,
    dataDir,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(cleanup());
        child.once("exit", () => resolve(cleanup()));
        child.kill("SIGTERM");
      }),
  };
}

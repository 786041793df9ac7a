// Starts the real local stack for Node-side tests and benchmarks: the origin on loopback and the Worker in workerd.
import { createTestHarness, unstable_startWorker } from "wrangler";
import { fileURLToPath } from "node:url";
import type { JWK } from "jose";
import { IDENTITY_VARS, mintAccessToken } from "./identity.ts";
import { spawnOrigin, trustEdgeEnv, type SpawnedOrigin } from "./spawn-origin.ts";

/**
 * How the Worker is run.
 * - "workerd" (default): wrangler's startWorker, as `wrangler dev` runs it. The Worker's own fetch() to the origin
 *   leaves workerd over a real socket, so WebSocket upgrades work and a refused connection makes fetch() throw.
 * - "test-harness": wrangler's createTestHarness. Its outbound fetches are re-issued by Node's fetch in this process
 *   (an `outboundService`), so the Worker cannot open a WebSocket to the origin, and a refused connection reaches the
 *   Worker as a 500 "TypeError: fetch failed" response instead of an error.
 */
type StackEngine = "workerd" | "test-harness";

export interface StackOptions {
  /** Extra or overriding Worker settings. */
  vars?: Record<string, string>;
  /** Use this origin URL instead of spawning the origin. */
  originUrl?: string;
  /** Extra flags for the spawned origin, e.g. ["--upstream", url]. */
  originArgs?: string[];
  engine?: StackEngine;
  /** Listen on this port ("workerd" engine), e.g. so PUBLIC_URL can name the edge's real address. Default: any free port. */
  port?: number;
  /**
   * Keep the Worker's state (Durable Object storage and alarms) in this directory ("workerd" engine), so that
   * restartWorker() or a later stack with the same directory finds it again. Default: nothing is persisted.
   */
  persistTo?: string;
}

export interface Stack {
  edgeUrl: string;
  /** An Outpost access token for this email (owner@, member@, viewer@example.com are on the access list). */
  mintToken(email: string): Promise<string>;
  originUrl: string;
  origin: SpawnedOrigin | null;
  /**
   * Stops workerd and starts it again with the same settings, port and persisted state ("workerd" engine; useful
   * with `persistTo`); the origin is left alone. `whileDown` runs after the old Worker has stopped and before the new
   * one starts. Resolves once the new Worker is ready.
   */
  restartWorker(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../wrangler.toml", import.meta.url));

/** Settings every test stack starts from, so a developer's .dev.vars never changes a test's outcome. */
export const TEST_VARS: Record<string, string> = {
  PUBLIC_URL: "http://localhost:8787",
  CORS_ORIGINS: "https://phone.example.com",
  MAX_BODY_BYTES: String(8 * 1024 * 1024),
  PROXY_PATHS: "/api/*,/socket.io/*",
  ORIGIN_TIMEOUT_MS: "2000",
  READY_TIMEOUT_MS: "1000",
  // Real device logins (the CLI against a real Worker) poll every second instead of waiting out RFC 8628's 5 s.
  DEVICE_LOGIN_INTERVAL_SECONDS: "1",
  ...IDENTITY_VARS,
};

interface RunningWorker {
  url: URL;
  close(): Promise<void>;
}

async function runWithHarness(vars: Record<string, string>): Promise<RunningWorker> {
  const harness = createTestHarness({
    root: ROOT,
    workers: [{ configPath: "./wrangler.toml", vars, secrets: {} }],
  });
  const { url } = await harness.listen();
  return { url, close: () => harness.close() };
}

async function runWithWorkerd(vars: Record<string, string>, port = 0, persistTo?: string): Promise<RunningWorker> {
  const worker = await unstable_startWorker({
    config: CONFIG,
    bindings: Object.fromEntries(Object.entries(vars).map(([name, value]) => [name, { type: "plain_text", value }])),
    dev: {
      server: { hostname: "127.0.0.1", port },
      inspector: false,
      watch: false,
      // A path keeps Durable Object storage and alarms there; false keeps nothing.
      persist: persistTo ?? false,
      logLevel: "none",
      registry: undefined,
    },
  });
  try {
    await worker.ready;
    return { url: await worker.url, close: () => worker.dispose() };
  } catch (err) {
    await worker.dispose();
    throw err;
  }
}

/** The edge's signing key as the origin should know it; undefined (the default test key) when it is not a JWK. */
function signingKeysOf(settings: Record<string, string | undefined>): JWK[] | undefined {
  try {
    return settings.OUTPOST_SIGNING_KEY ? [JSON.parse(settings.OUTPOST_SIGNING_KEY) as JWK] : undefined;
  } catch {
    return undefined;
  }
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  // The origin trusts this stack's edge: its key, its PUBLIC_URL as issuer, its ORIGIN_AUDIENCE.
  const settings = { ...TEST_VARS, ...options.vars };
  const trust = trustEdgeEnv({ keys: signingKeysOf(settings), issuer: settings.PUBLIC_URL, audience: settings.ORIGIN_AUDIENCE });
  const origin = options.originUrl ? null : await spawnOrigin(options.originArgs ?? [], trust);
  const originUrl = options.originUrl ?? origin!.url;
  const vars = { ...TEST_VARS, ORIGIN_URL: originUrl, ...options.vars };
  let worker: RunningWorker;
  try {
    worker = options.engine === "test-harness" ? await runWithHarness(vars) : await runWithWorkerd(vars, options.port, options.persistTo);
  } catch (err) {
    await origin?.stop();
    throw err;
  }
  let running: RunningWorker | null = worker;
  return {
    edgeUrl: worker.url.origin,
    mintToken: (email: string) => mintAccessToken((vars as Record<string, string>).PUBLIC_URL ?? worker.url.origin, email),
    originUrl,
    origin,
    async restartWorker(whileDown) {
      if (options.engine === "test-harness") throw new Error("restartWorker() needs the workerd engine");
      // The same port, so edgeUrl (and any client holding it) stays valid.
      const port = Number(worker.url.port);
      await running?.close();
      running = null;
      await whileDown?.();
      worker = await runWithWorkerd(vars, port, options.persistTo);
      running = worker;
    },
    async stop() {
      await running?.close();
      running = null;
      await origin?.stop();
    },
  };
}

// Starts the real local stack for Node-side tests and benchmarks: the origin on loopback and the Worker in workerd.
import { createTestHarness } from "wrangler";
import { fileURLToPath } from "node:url";
import { spawnOrigin, type SpawnedOrigin } from "./spawn-origin.ts";

export interface StackOptions {
  /** Extra or overriding Worker settings. */
  vars?: Record<string, string>;
  /** Use this origin URL instead of spawning the origin. */
  originUrl?: string;
}

export interface Stack {
  edgeUrl: string;
  originUrl: string;
  origin: SpawnedOrigin | null;
  stop(): Promise<void>;
}

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Settings every test stack starts from, so a developer's .dev.vars never changes a test's outcome. */
export const TEST_VARS: Record<string, string> = {
  PUBLIC_URL: "http://localhost:8787",
  CORS_ORIGINS: "https://phone.example.com",
  MAX_BODY_BYTES: String(8 * 1024 * 1024),
  PROXY_PATHS: "/api/*,/socket.io/*",
  ORIGIN_TIMEOUT_MS: "2000",
  READY_TIMEOUT_MS: "1000",
};

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const origin = options.originUrl ? null : await spawnOrigin();
  const originUrl = options.originUrl ?? origin!.url;
  const vars = { ...TEST_VARS, ORIGIN_URL: originUrl, ...options.vars };
  const harness = createTestHarness({
    root: ROOT,
    workers: [{ configPath: "./wrangler.toml", vars, secrets: {} }],
  });
  const { url } = await harness.listen();
  return {
    edgeUrl: url.origin,
    originUrl,
    origin,
    async stop() {
      await harness.close();
      await origin?.stop();
    },
  };
}

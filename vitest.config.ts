// Two test projects: Worker and Durable Object tests inside workerd, and Node-side tests (origin, CLI, end to end).
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { generateKeyPairSync } from "node:crypto";
import { defineConfig } from "vitest/config";

/** A fresh ES256 private JWK per test run: no key is ever committed. */
function signingKey(kid: string): string {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return JSON.stringify({ ...privateKey.export({ format: "jwk" }), kid, alg: "ES256" });
}

// Kept in the environment so test/workers/global-setup.ts can tell the real origin which keys to trust
// (and so a second evaluation of this file in the same run reuses them).
process.env.OUTPOST_TEST_SIGNING_KEY ??= signingKey("test-current");
process.env.OUTPOST_TEST_PREVIOUS_SIGNING_KEY ??= signingKey("test-previous");

export default defineConfig({
  test: {
    // Logs (one JSON line per Worker request, origin logs) only for tests that fail.
    silent: "passed-only",
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // Tests never depend on a developer's .dev.vars: every setting they rely on is fixed here.
              bindings: {
                ORIGIN_URL: "http://127.0.0.1:9",
                PUBLIC_URL: "https://outpost.example.com",
                CORS_ORIGINS: "https://extra.example.com",
                MAX_BODY_BYTES: "1024",
                PROXY_PATHS: "/api/*,/socket.io/*",
                ORIGIN_TIMEOUT_MS: "1000",
                READY_TIMEOUT_MS: "500",
                AUTH_PROVIDER: "outpost",
                OUTPOST_SIGNING_KEY: process.env.OUTPOST_TEST_SIGNING_KEY,
                // Test-only: the private half of a rotated key, so tests can mint tokens it signed.
                TEST_PREVIOUS_SIGNING_KEY: process.env.OUTPOST_TEST_PREVIOUS_SIGNING_KEY,
                OWNER_EMAILS: "owner@example.com",
                MEMBER_EMAILS: "member@example.com",
                VIEWER_EMAILS: "viewer@example.com",
                ORIGIN_AUDIENCE: "origin",
                MAX_TOKEN_AGE_SECONDS: "86400",
                // Device-login tests poll every second instead of waiting out RFC 8628's 5 s.
                DEVICE_LOGIN_INTERVAL_SECONDS: "1",
                // Short enough that a real alarm can be waited for (the presence real-time test).
                HEARTBEAT_TTL_SECONDS: "2",
                HEARTBEAT_INTERVAL_SECONDS: "1",
              },
            },
          }),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts"],
          globalSetup: ["test/workers/global-setup.ts"],
        },
      },
      {
        test: {
          name: "node",
          environment: "node",
          include: ["test/node/**/*.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});

// Two test projects: Worker and Durable Object tests inside workerd, and Node-side tests (origin, CLI, end to end).
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
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

// Bundles the CLI with esbuild into cli/dist/outpost.mjs (plus lazily loaded chunks): `npm run build:cli`.
import { build } from "esbuild";
import { chmodSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const DEFAULT_OUTDIR = join(ROOT, "cli", "dist");

/**
 * Heavy or native-leaning dependencies stay in node_modules and load only with the command that needs them:
 * supabase-js (`login --email`), and the origin's server stack (`outpost origin`).
 */
const EXTERNAL = ["@supabase/supabase-js", "hono", "hono/*", "@hono/node-server", "ws"];

/** Builds into `outdir` (which must sit inside the project, so the external packages resolve) and returns the entry. */
export async function buildCli(outdir: string = DEFAULT_OUTDIR): Promise<string> {
  const dir = resolve(outdir);
  rmSync(dir, { recursive: true, force: true });
  await build({
    entryPoints: { outpost: join(ROOT, "cli", "main.ts") },
    outdir: dir,
    outExtension: { ".js": ".mjs" },
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node22",
    external: EXTERNAL,
    // Bundled CommonJS dependencies (yaml, qrcode-terminal) call require() for Node built-ins.
    banner: {
      js: '#!/usr/bin/env node\nimport { createRequire as __outpostCreateRequire } from "node:module";\nconst require = __outpostCreateRequire(import.meta.url);',
    },
    legalComments: "none",
    minify: false,
    logLevel: "warning",
  });
  const entry = join(dir, "outpost.mjs");
  chmodSync(entry, 0o755);
  return entry;
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  const entry = await buildCli(process.argv[2] ?? DEFAULT_OUTDIR);
  console.log(`built ${entry}`);
}

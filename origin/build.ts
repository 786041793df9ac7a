// Builds the package entry "outpost/origin" into dist/: origin/index.ts bundled by esbuild, declarations by tsc (`npm run build:origin`).
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const OUTDIR = join(ROOT, "dist");
const TSC = join(dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin", "tsc");

/**
 * One ES module with the origin's and shared/'s code inlined; every package (hono, jose, ...) stays an import, so the
 * consumer's copy is the one used. Declarations keep the source layout (dist/origin/*.d.ts, dist/shared/*.d.ts).
 */
export async function buildOrigin(): Promise<string> {
  rmSync(OUTDIR, { recursive: true, force: true });
  await build({
    entryPoints: [join(ROOT, "origin", "index.ts")],
    outfile: join(OUTDIR, "origin", "index.js"),
    bundle: true,
    packages: "external",
    format: "esm",
    platform: "node",
    target: "node22",
    legalComments: "none",
    logLevel: "warning",
  });
  execFileSync(process.execPath, [TSC, "-p", join(ROOT, "origin", "tsconfig.build.json")], { stdio: "inherit" });
  return join(OUTDIR, "origin", "index.js");
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  console.log(`built ${await buildOrigin()}`);
}

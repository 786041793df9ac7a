// Builds the phone web app into web/dist (hashed /assets/, a stable /sw.js) and measures its initial JavaScript against the budget.
import { createHash } from "node:crypto";
import { EDGE_PORT } from "../shared/settings/edge.ts";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { defineConfig, type Plugin, type ResolvedConfig } from "vite";

const ROOT = import.meta.dirname;
/** Initial JavaScript (everything index.html loads before the app runs), gzipped. */
export const BUDGET_BYTES = 100 * 1024;
const SW_VERSION = "__OUTPOST_BUILD_ID__";

export interface Measured {
  file: string;
  kind: "initial" | "lazy" | "service worker" | "css";
  raw: number;
  gzip: number;
}

const STATIC_IMPORT = /(?:^|[;}\s])import\s*(?:[\w$*{}\s,]+from\s*)?["']\.\/([\w.-]+\.js)["']/g;

/** Adds a chunk and, transitively, the chunks it imports statically. */
function withImports(outDir: string, file: string, seen: Set<string>): void {
  if (seen.has(file)) return;
  seen.add(file);
  for (const m of readFileSync(join(outDir, file), "utf8").matchAll(STATIC_IMPORT)) withImports(outDir, `assets/${m[1]}`, seen);
}

/** Reads a built dist: the scripts index.html loads (and their static imports) are initial; other chunks are lazy. */
export function measureDist(outDir: string): { files: Measured[]; initialGzip: number } {
  const html = readFileSync(join(outDir, "index.html"), "utf8");
  const initial = new Set<string>();
  for (const tag of html.match(/<(script|link)\b[^>]*>/g) ?? []) {
    const src = /\b(?:src|href)="\/(assets\/[^"]+\.js)"/.exec(tag)?.[1];
    if (src && (tag.startsWith("<script") || /rel="modulepreload"/.test(tag))) withImports(outDir, src, initial);
  }
  const files: Measured[] = [];
  const size = (file: string, kind: Measured["kind"]) => {
    const buf = readFileSync(join(outDir, file));
    files.push({ file, kind, raw: buf.byteLength, gzip: gzipSync(buf, { level: 9 }).byteLength });
  };
  for (const name of readdirSync(join(outDir, "assets")).sort()) {
    const file = `assets/${name}`;
    if (name.endsWith(".css")) size(file, "css");
    else if (name.endsWith(".js")) size(file, initial.has(file) ? "initial" : "lazy");
  }
  if (existsSync(join(outDir, "sw.js"))) size("sw.js", "service worker");
  const initialGzip = files.filter((f) => f.kind === "initial").reduce((sum, f) => sum + f.gzip, 0);
  return { files, initialGzip };
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;

/** The BENCHMARKS.md section, between the bench runner's markers for id "web". */
export function sizeSection(report: ReturnType<typeof measureDist>, command: string): string {
  const rows = report.files
    .sort((a, b) => a.kind.localeCompare(b.kind) || b.gzip - a.gzip)
    .map((f) => `| \`${f.file.replace(/-[\w-]{8}\./, "-[hash].")}\` | ${f.kind} | ${kb(f.raw)} | ${kb(f.gzip)} |`);
  return [
    "## Web app: initial JavaScript",
    "",
    `Command: \`${command}\` (a production \`vite build web\`; gzip level 9). Date: ${new Date().toISOString().slice(0, 10)}.`,
    "Initial = the scripts `index.html` loads and their static imports; lazy chunks (supabase-js) load only when used.",
    "",
    "| file | kind | raw | gzip |",
    "|---|---|---:|---:|",
    ...rows,
    "",
    `**Initial JavaScript: ${kb(report.initialGzip)} gzipped** (budget ${kb(BUDGET_BYTES)}).`,
  ].join("\n");
}

function writeSection(file: string, markdown: string): void {
  const start = "<!-- bench:web:start -->";
  const end = "<!-- bench:web:end -->";
  const block = `${start}\n${markdown}\n${end}`;
  const header =
    "# Benchmarks\n\nEach section is rewritten by the command it names, between its `<!-- bench:<id>:start -->` and\n`<!-- bench:<id>:end -->` markers; text outside the markers is kept.\n";
  const current = existsSync(file) ? readFileSync(file, "utf8") : header;
  const a = current.indexOf(start);
  const b = current.indexOf(end);
  writeFileSync(file, a !== -1 && b > a ? current.slice(0, a) + block + current.slice(b + end.length) : `${current.trimEnd()}\n\n${block}\n`);
}

/** Stamps sw.js with a build id (so each deploy gets fresh caches) and enforces the initial-JS budget. */
function outpostBuild(): Plugin {
  let config: ResolvedConfig;
  return {
    name: "outpost-web-build",
    apply: "build",
    configResolved(resolved) {
      config = resolved;
    },
    generateBundle(_options, bundle) {
      // Hashed names stand for their contents; public files (offline page, icons, manifest) are hashed as they are.
      const hash = createHash("sha256").update(
        Object.keys(bundle)
          .filter((n) => n !== "sw.js")
          .sort()
          .join("\n"),
      );
      const publicDir = config.publicDir;
      if (publicDir && existsSync(publicDir)) {
        for (const name of (readdirSync(publicDir, { recursive: true }) as string[]).sort()) {
          const path = join(publicDir, name);
          if (statSync(path).isFile()) hash.update(name).update(readFileSync(path));
        }
      }
      const id = hash.digest("hex").slice(0, 12);
      const sw = bundle["sw.js"];
      if (sw?.type === "chunk") sw.code = sw.code.replaceAll(SW_VERSION, id);
    },
    writeBundle() {
      const outDir = resolve(config.root, config.build.outDir);
      const report = measureDist(outDir);
      config.logger.info(`initial JavaScript: ${kb(report.initialGzip)} gzipped (budget ${kb(BUDGET_BYTES)})`);
      if (report.initialGzip > BUDGET_BYTES) {
        throw new Error(`initial JavaScript is ${kb(report.initialGzip)} gzipped, over the ${kb(BUDGET_BYTES)} budget`);
      }
      if (config.mode === "bench") {
        writeSection(resolve(ROOT, "..", "BENCHMARKS.md"), sizeSection(report, "npm run bench:web"));
        config.logger.info('wrote section "web" of BENCHMARKS.md');
      }
    },
  };
}

export default defineConfig({
  root: ROOT,
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    rollupOptions: {
      input: { index: resolve(ROOT, "index.html"), sw: resolve(ROOT, "src/sw.ts") },
      output: { entryFileNames: (chunk) => (chunk.name === "sw" ? "sw.js" : "assets/[name]-[hash].js") },
    },
  },
  plugins: [outpostBuild()],
  server: {
    port: 5173,
    proxy: Object.fromEntries(["/api", "/auth", "/health", "/ready", "/.well-known"].map((p) => [p, { target: `http://localhost:${EDGE_PORT}`, ws: true }])),
  },
});

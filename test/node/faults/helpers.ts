// Helpers for the fault tests: the user's app as a child process that can be killed, and a client that reports how a request ended.
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { bearer } from "../../support/http-client.ts";

const APP_SERVER = fileURLToPath(new URL("../origin/app-server.ts", import.meta.url));

export interface AppProcess {
  url: string;
  child: ChildProcess;
  /** SIGKILL, as a crash would; resolves once the process is gone (its sockets closed by the kernel). */
  kill(): Promise<void>;
}

/** Resolves once the child has exited, sending `signal` first unless it already has. */
export function killChild(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill(signal);
  });
}

/** The test app of test/node/origin/app-server.ts (SSE, uploads, echo), in a process of its own. */
export async function spawnApp(port = 0): Promise<AppProcess> {
  const script = `const { startTestApp } = await import(${JSON.stringify(APP_SERVER)}); const app = await startTestApp(${port}); console.log("listening on " + app.url);`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    env: { ...process.env, NODE_NO_WARNINGS: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`app did not start: ${out}`)), 15_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.stderr?.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`app exited with ${code}: ${out}`));
    });
  });
  return { url, child, kill: () => killChild(child) };
}

/**
 * How an exchange ended, as the phone saw it:
 * - "complete": a whole response (its status, headers and a body that ended as the protocol says).
 * - "cut": the response started (status and headers in hand) and the connection then closed before the body ended.
 * - "no-response": the connection failed before any status line arrived.
 */
type Ending = "complete" | "cut" | "no-response";

export interface Exchange {
  ending: Ending;
  status: number | null;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Request body bytes handed to the socket. */
  sentBytes: number;
  /** Date.now() when the exchange ended. */
  endedAt: number;
}

export interface ExchangeOptions {
  token: string;
  method?: string;
  headers?: Record<string, string>;
  /** Upload this many bytes, `chunkBytes` every `everyMs` ms (chunked), until done or answered. */
  upload?: { totalBytes: number; chunkBytes: number; everyMs: number };
  /** Called with the body received so far, after each chunk of it. */
  onBody?: (body: string) => void;
  /** Called with the request bytes sent so far, after each chunk. */
  onSent?: (sentBytes: number) => void;
}

/** One request over a fresh connection; resolves (never rejects) once it has ended one way or another. */
export function exchange(url: string, options: ExchangeOptions): Promise<Exchange> {
  return new Promise((resolve) => {
    const result: Exchange = { ending: "no-response", status: null, headers: {}, body: "", sentBytes: 0, endedAt: 0 };
    let settled = false;
    let writer: ReturnType<typeof setInterval> | undefined;
    const settle = (ending: Ending) => {
      if (settled) return;
      settled = true;
      clearInterval(writer);
      result.ending = ending;
      result.endedAt = Date.now();
      req.destroy();
      resolve(result);
    };
    const headers = { ...bearer(options.token), ...options.headers };
    const req = http.request(url, { method: options.method ?? (options.upload ? "POST" : "GET"), headers, agent: false }, (res) => {
      result.status = res.statusCode ?? null;
      result.headers = res.headers;
      res.setEncoding("utf8");
      res.on("data", (text: string) => {
        result.body += text;
        options.onBody?.(result.body);
      });
      res.on("end", () => settle("complete"));
      // Node reports a body cut short (a chunked body without its last chunk, a short Content-Length) as an error.
      res.on("error", () => settle("cut"));
      res.on("close", () => settle(res.complete ? "complete" : "cut"));
    });
    req.on("error", () => settle(result.status === null ? "no-response" : "cut"));
    const upload = options.upload;
    if (!upload) req.end();
    else {
      writer = setInterval(() => {
        if (result.status !== null) return clearInterval(writer);
        if (result.sentBytes >= upload.totalBytes) {
          clearInterval(writer);
          req.end();
          return;
        }
        const n = Math.min(upload.chunkBytes, upload.totalBytes - result.sentBytes);
        req.write(Buffer.alloc(n, 0x61));
        result.sentBytes += n;
        options.onSent?.(result.sentBytes);
      }, upload.everyMs);
    }
  });
}

/** The `data:` of each complete Server-Sent Event in `text`. */
export function sseData(text: string): string[] {
  return text
    .replace(/\r\n/g, "\n")
    .split("\n\n")
    .slice(0, -1)
    .map((block) =>
      block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n"),
    );
}

// Forwards a request to the origin with its body streamed and capped, and maps origin failures to clear errors.
import type { Context } from "hono";
import type { Config } from "../../shared/settings/index.ts";
import { OutpostError } from "../../shared/errors.ts";
import type { AppEnv } from "../types.ts";
import { forwardRequestHeaders, forwardResponseHeaders } from "./headers.ts";

/**
 * Counts bytes as they stream and fails the stream before the one chunk that would pass the cap.
 * `abortUpstream` must cancel the origin request: erroring the body alone is not enough, because workerd's fetch
 * then ends a chunked upload cleanly and the origin takes the truncated body as complete (and may answer 200).
 */
/**
 * Passes the upload through, calling `progress` on every chunk and when it ends, and errors it (aborting the upstream
 * request) past `cap` bytes; `cap` is Infinity for a declared length, which was checked against the cap already.
 */
function watchUpload(body: ReadableStream<Uint8Array>, cap: number, progress: () => void, abortUpstream: () => void) {
  let seen = 0;
  let exceeded = false;
  const stream = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > cap) {
          exceeded = true;
          abortUpstream();
          controller.error(new Error("request body over the cap"));
          return;
        }
        progress();
        controller.enqueue(chunk);
      },
      flush: progress,
    }),
  );
  return { stream, exceeded: () => exceeded };
}

export interface ProxyOptions {
  /** Headers the caller adds for the origin (e.g. a signed assertion), set after stripping. */
  extraHeaders?: Record<string, string>;
  /** Strip the client's credentials (the origin trusts the assertion instead). */
  dropCredentials?: boolean;
  /** The path and query to request at the origin, when not the client's own (e.g. a used ticket removed). */
  pathAndQuery?: string;
  /** Relays an accepted WebSocket instead of passing it through, e.g. to close it when the session ends. */
  relayWebSocket?: (upstream: WebSocket, response: Response) => Response;
}

export async function proxyToOrigin(c: Context<AppEnv>, config: Config, options: ProxyOptions = {}): Promise<Response> {
  const req = c.req.raw;
  const incomingUrl = new URL(req.url);
  // Concatenated, not resolved: a path like "//other.host/x" must stay a path on the origin, never become a host.
  const target = new URL(config.originUrl.origin + (options.pathAndQuery ?? incomingUrl.pathname + incomingUrl.search));
  const websocket = req.headers.get("upgrade")?.toLowerCase() === "websocket";

  const headers = forwardRequestHeaders(req.headers, {
    clientIp: req.headers.get("cf-connecting-ip") ?? "127.0.0.1",
    publicUrl: config.publicUrl ?? incomingUrl,
    requestId: c.get("requestId"),
    websocket,
    dropCredentials: options.dropCredentials ?? false,
  });
  for (const [k, v] of Object.entries(options.extraHeaders ?? {})) headers.set(k, v);

  const abort = new AbortController();
  // ORIGIN_TIMEOUT_MS is how long the origin may keep us waiting: for its answer once the request is sent, and for the
  // next chunk of an upload while it is sent, so a long upload that keeps moving is never cut off by it.
  let timer: ReturnType<typeof setTimeout> | null = null;
  const restartTimer = () => {
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(new Error("origin timeout")), config.originTimeoutMs);
  };
  let body: ReadableStream<Uint8Array> | null = null;
  let exceeded = () => false;
  if (req.body && req.method !== "GET" && req.method !== "HEAD") {
    const declared = req.headers.get("content-length");
    const abortUpstream = () => abort.abort(new Error("request body over the cap"));
    ({ stream: body, exceeded } = watchUpload(req.body, declared === null ? config.maxBodyBytes : Infinity, restartTimer, abortUpstream));
    // A declared length stays declared: the origin gets Content-Length, not a chunked body.
    if (declared !== null) body = body.pipeThrough(new FixedLengthStream(Number(declared)));
  }
  restartTimer();
  let upstream: Response;
  try {
    upstream = await fetch(target, {
      method: req.method,
      headers,
      body,
      redirect: "manual",
      signal: abort.signal,
      // ORIGIN_URL is a hostname in a Cloudflare zone: without this its cache could keep one user's response (any
      // static-looking path) and hand it to the next caller, signed in or not.
      cache: "no-store",
    });
  } catch (err) {
    if (exceeded()) throw tooLarge(config);
    if (abort.signal.aborted) {
      throw new OutpostError("ORIGIN_TIMEOUT", "The origin did not answer in time.", { detail: String(err) });
    }
    throw new OutpostError("ORIGIN_UNREACHABLE", "The origin is not reachable.", { detail: String(err) });
  } finally {
    clearTimeout(timer);
  }

  // Cloudflare answers 530 when the tunnel has no connector: the origin is offline, not broken.
  if (upstream.status === 530) {
    throw new OutpostError("ORIGIN_UNREACHABLE", "The origin is not reachable.", { detail: "tunnel 530" });
  }
  if (upstream.webSocket) return options.relayWebSocket ? options.relayWebSocket(upstream.webSocket, upstream) : upstream;
  return new Response(upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: forwardResponseHeaders(upstream.headers),
  });
}

function tooLarge(config: Config): OutpostError {
  return new OutpostError("PAYLOAD_TOO_LARGE", `The request body is larger than ${config.maxBodyBytes} bytes.`);
}

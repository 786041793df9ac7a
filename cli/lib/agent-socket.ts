// The agent WebSocket: one connection per process to the edge's presence hub (GET /api/presence/agent), carrying the
// heartbeats and end reports of all the process's sessions as messages — far cheaper at the edge than a request per
// beat. It uses the `ws` package (node:http underneath, loaded only when first needed; no undici), reconnects with
// capped backoff and jitter, and fetches a fresh token when the edge closed it because the old one ended (4401).
import type WsModule from "ws";
import type { WebSocket as WsSocket } from "ws";
import { debug, type EdgeClient } from "./http.ts";
import { USER_AGENT } from "./version.ts";
import { SESSION_ENDED, type AckResult, type AgentAnswer, type AgentRequest } from "../../shared/api-types.ts";
import { PATHS } from "../../shared/paths.ts";

/** A request as the caller gives it: the socket numbers its messages itself. */
type WithoutId<M> = M extends unknown ? Omit<M, "id"> : never;

/** Why a message got no ack: the socket closed or timed out (send it over HTTP instead), or the edge refused it. */
class AgentSocketError extends Error {
  readonly refused: boolean;

  constructor(message: string, refused = false) {
    super(message);
    this.refused = refused;
    this.name = "AgentSocketError";
  }
}

export interface AgentSocketOptions {
  /** Reconnect backoff starts here and doubles up to `maxBackoffMs`. */
  backoffBaseMs?: number;
  maxBackoffMs?: number;
}

interface Pending {
  resolve(results: AckResult[]): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * The `ws` client class, through require rather than `import`: importing the CommonJS package from ES modules runs it
 * through the ESM loader, which costs the idle CLI ~7 MB more RSS. Only its client module is loaded (not the server,
 * nor the stream wrapper); node:module comes from getBuiltinModule for the reason given in request.ts. `ws` stays
 * outside the bundle (cli/build.ts).
 */
function loadWs(): typeof WsModule {
  const require = process.getBuiltinModule("node:module").createRequire(import.meta.url);
  const root = require.resolve("ws/package.json").slice(0, -"package.json".length);
  return require(`${root}lib/websocket.js`) as typeof WsModule;
}

/** Frame masks need not be secret from a CLI (they guard browsers' caches); Math.random spares a crypto pool. */
function generateMask(mask: Buffer): void {
  for (let i = 0; i < 4; i++) mask[i] = Math.floor(Math.random() * 256);
}

export class AgentSocket {
  readonly #client: EdgeClient;
  readonly #backoffBaseMs: number;
  readonly #maxBackoffMs: number;
  #ws: WsSocket | null = null;
  #open = false;
  #connecting = false;
  /** No more reconnects (the owner is shutting down); a socket already open stays usable until close(). */
  #held = false;
  #closed = false;
  #failures = 0;
  #refresh = false;
  #retry: NodeJS.Timeout | null = null;
  #nextId = 0;
  readonly #pending = new Map<number, Pending>();

  constructor(client: EdgeClient, options: AgentSocketOptions = {}) {
    this.#client = client;
    this.#backoffBaseMs = options.backoffBaseMs ?? 1000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 30_000;
  }

  get open(): boolean {
    return this.#open;
  }

  /** Starts connecting (once; later calls while connecting or open do nothing). */
  connect(): void {
    if (this.#open || this.#connecting || this.#held || this.#closed || !this.#client.tokens) return;
    this.#connecting = true;
    void this.#dial().catch((err: unknown) => {
      this.#connecting = false;
      debug(`agent socket: ${err instanceof Error ? err.message : String(err)}`);
      this.#reconnectLater();
    });
  }

  async #dial(): Promise<void> {
    const token = await this.#client.tokens!.accessToken(this.#refresh);
    this.#refresh = false;
    const WebSocket = loadWs();
    if (this.#held || this.#closed) {
      this.#connecting = false;
      return;
    }
    const url = new URL(PATHS.agentSocket, this.#client.base);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const started = Date.now();
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${token}`, "user-agent": USER_AGENT },
      handshakeTimeout: 5000,
      perMessageDeflate: false,
      generateMask,
    });
    this.#ws = ws;
    /** The HTTP status of a refused upgrade, from the response itself. */
    let refusedWith: number | null = null;
    ws.on("unexpected-response", (_req, res) => {
      refusedWith = res.statusCode ?? 0;
      res.resume();
      // What ws does without this listener, minus the status parsed back out of its message.
      ws.terminate();
    });
    ws.on("open", () => {
      this.#connecting = false;
      this.#open = true;
      debug(`GET ${PATHS.agentSocket} -> 101 (${Date.now() - started} ms)`);
      if (this.#closed) ws.close(1000, "done");
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      let msg: AgentAnswer;
      try {
        msg = JSON.parse(data.toString()) as AgentAnswer;
      } catch {
        return;
      }
      const id = msg.id;
      const pending = typeof id === "number" ? this.#pending.get(id) : undefined;
      if (!pending) return;
      this.#pending.delete(id as number);
      clearTimeout(pending.timer);
      if (msg.type === "ack" && Array.isArray(msg.results)) {
        this.#failures = 0;
        pending.resolve(msg.results);
      } else pending.reject(new AgentSocketError(`the edge refused the message: ${msg.type === "error" ? (msg.message ?? msg.type) : msg.type}`, true));
    });
    ws.on("error", (err) => {
      const status = refusedWith;
      if (status !== null) debug(`GET ${PATHS.agentSocket} -> ${status} (${Date.now() - started} ms)`);
      else debug(`agent socket error: ${err.message}`);
      // Signed out or the token has just ended: the next attempt gets a fresh one.
      if (status === 401) this.#refresh = true;
      // An edge without the agent socket (older, or a viewer's token): stop trying so often; HTTP carries the beats.
      if (status !== null && status !== 401 && status !== 429 && !(status >= 500 && status < 600)) this.#failures = Math.max(this.#failures, 16);
    });
    ws.on("close", (code, reason) => {
      const wasOpen = this.#open;
      this.#open = false;
      this.#connecting = false;
      if (this.#ws === ws) this.#ws = null;
      if (wasOpen) debug(`agent socket closed (${code}${reason.length ? ` ${reason.toString()}` : ""})`);
      this.#rejectAll("the agent socket closed");
      if (code === SESSION_ENDED) {
        // The credential that opened it ended: reconnect at once with a fresh token.
        this.#refresh = true;
        this.#failures = 0;
      }
      this.#reconnectLater(code === SESSION_ENDED);
    });
  }

  #reconnectLater(soon = false): void {
    if (this.#held || this.#closed || this.#retry) return;
    this.#failures++;
    const ceiling = soon ? this.#backoffBaseMs : Math.min(this.#maxBackoffMs, this.#backoffBaseMs * 2 ** Math.min(this.#failures - 1, 20));
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.connect();
    }, delay);
    this.#retry.unref();
  }

  /** Sends one message and waits for its answer; rejects (AgentSocketError) when the socket is not open or closes first. */
  request(message: WithoutId<AgentRequest>, timeoutMs: number): Promise<AckResult[]> {
    const ws = this.#ws;
    if (!this.#open || !ws) return Promise.reject(new AgentSocketError("the agent socket is not open"));
    const id = ++this.#nextId;
    return new Promise<AckResult[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new AgentSocketError(`no answer on the agent socket within ${timeoutMs} ms`));
        // Probably a dead connection: drop it and dial again.
        ws.terminate();
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...message, id } satisfies AgentRequest), (err) => {
        if (!err) return;
        const pending = this.#pending.get(id);
        if (!pending) return;
        this.#pending.delete(id);
        clearTimeout(pending.timer);
        reject(new AgentSocketError(`could not send on the agent socket: ${err.message}`));
      });
    });
  }

  /** No more reconnects; an open socket stays usable (for end reports) until close(). */
  hold(): void {
    this.#held = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
  }

  close(): void {
    this.hold();
    this.#closed = true;
    this.#rejectAll("the agent socket was closed");
    const ws = this.#ws;
    this.#ws = null;
    this.#open = false;
    if (ws && ws.readyState === ws.OPEN) ws.close(1000, "done");
    else if (ws && ws.readyState === ws.CONNECTING) ws.terminate();
  }

  #rejectAll(why: string): void {
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new AgentSocketError(why));
    }
  }
}

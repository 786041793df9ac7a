// Helpers for the presence tests: a controllable clock, a fake origin behind fetch, tokens, sockets, and hub access.
import { createExecutionContext, env, runDurableObjectAlarm, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { importJWK, SignJWT, type JWK } from "jose";
import { expect, vi } from "vitest";
import worker from "../../../worker/index.ts";
import type { PresenceHub } from "../../../durable-objects/presence/hub.ts";

export const BASE = "https://outpost.example.com";
/** One env object for the whole file (the Worker caches parsed settings per env object); bodies up to 1 MiB pass the guard. */
export const testEnv: Env = { ...env, MAX_BODY_BYTES: "1048576" };
/** Where the test bindings point ORIGIN_URL; nothing listens there, so the fake origin below answers instead. */
const ORIGIN = new URL(env.ORIGIN_URL).origin;

export type Role = "owner" | "member" | "viewer";

export async function tokenFor(role: Role, ttl = 600): Promise<string> {
  const jwk = JSON.parse(env.OUTPOST_SIGNING_KEY) as JWK & { kid: string };
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ email: `${role}@example.com` })
    .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: jwk.kid })
    .setIssuer(BASE)
    .setAudience("outpost")
    .setSubject(`outpost:${role}@example.com`)
    .setJti(crypto.randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + ttl)
    .sign(await importJWK(jwk, "ES256"));
}

export async function api(path: string, init: RequestInit = {}, workerEnv: Env = testEnv): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${BASE}${path}`, init), workerEnv, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** A JSON request as `role`. */
export async function as(role: Role, method: string, body?: unknown, headers: Record<string, string> = {}): Promise<RequestInit> {
  return {
    method,
    headers: { authorization: `Bearer ${await tokenFor(role)}`, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  };
}

export async function expectError(res: Response, status: number, code: string): Promise<{ code: string; message: string }> {
  const body = await res.json<{ error: { code: string; message: string } }>();
  expect({ status: res.status, code: body.error?.code }, body.error?.message).toEqual({ status, code });
  return body.error;
}

let counter = 0;
/** A session id (or hub name) no other test uses. */
export function unique(prefix: string): string {
  counter++;
  return `${prefix}-${counter}-${crypto.randomUUID().slice(0, 8)}`;
}

export function hub(name = unique("hub")): DurableObjectStub<PresenceHub> {
  return env.PRESENCE.getByName(name);
}

export const TTL_MS = Number(env.HEARTBEAT_TTL_SECONDS) * 1000;
export const CALLER = { sub: "outpost:member@example.com", email: "member@example.com" };
export const OTHER = { sub: "outpost:owner@example.com", email: "owner@example.com" };

/**
 * The clock every test drives: Date only (timers stay real), starting well ahead of real time so the hub's alarms are
 * due only when a test runs them with runDurableObjectAlarm. It only moves forward, across tests too, since hubs keep
 * last-seen times in memory.
 */
let fakeNow = Date.now() + 365 * 24 * 60 * 60 * 1000;
export const clock = {
  start(): number {
    vi.useFakeTimers({ toFake: ["Date"], now: fakeNow });
    return fakeNow;
  },
  advance(ms: number): number {
    fakeNow = Date.now() + ms;
    vi.setSystemTime(fakeNow);
    return fakeNow;
  },
  stop(): void {
    fakeNow = Math.max(fakeNow, Date.now()) + 60 * 60 * 1000;
    vi.useRealTimers();
  },
};

export function alarmOf(stub: DurableObjectStub<PresenceHub>): Promise<number | null> {
  return runInDurableObject(stub, (_hub, state) => state.storage.getAlarm());
}

/** Runs the alarm if it is due on the test clock, as the runtime would; true when it ran. */
export async function runDueAlarm(stub: DurableObjectStub<PresenceHub>): Promise<boolean> {
  const at = await alarmOf(stub);
  if (at === null || at > Date.now()) return false;
  return runDurableObjectAlarm(stub);
}

interface Delivery {
  body: string;
  assertion: string | null;
  events: { id: string; seq: number; type: string; sessionId: string | null; at: string; data: Record<string, unknown> }[];
}

/**
 * The origin, faked behind the global fetch the hub uses (tests and Durable Objects share one isolate): it records
 * event batches and answers `status` to them and to /health. Anything not addressed to ORIGIN_URL passes through.
 */
export function fakeOrigin(initial = { events: 200, health: 200 }) {
  const state = { ...initial, deliveries: [] as Delivery[], probes: 0 };
  const real = globalThis.fetch;
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const req = new Request(input as RequestInfo, init);
    const url = new URL(req.url);
    if (url.origin !== ORIGIN) return real(req);
    if (url.pathname === "/health") {
      state.probes++;
      return new Response("ok", { status: state.health });
    }
    if (url.pathname === "/outpost/events" && req.method === "POST") {
      const body = await req.text();
      if (state.events >= 200 && state.events < 300) {
        state.deliveries.push({ body, assertion: req.headers.get("outpost-assertion"), events: (JSON.parse(body) as Delivery).events });
      }
      return new Response(null, { status: state.events });
    }
    return new Response("not found", { status: 404 });
  });
  return {
    state,
    restore: () => spy.mockRestore(),
    /** Every acknowledged event of one hub, in delivery order. */
    eventsOf: (hubId: string) => state.deliveries.flatMap((d) => d.events).filter((e) => e.id.startsWith(`${hubId}:`)),
  };
}

export interface Socket {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  /** Resolves with the next message matching `pred` (already received ones count), or fails after `ms`. */
  next(pred?: (m: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  close(): void;
}

export function socketOf(res: Response): Socket {
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const messages: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let taken = 0;
  ws.addEventListener("message", (e) => {
    messages.push(typeof e.data === "string" && e.data.startsWith("{") ? JSON.parse(e.data) : { raw: e.data });
    for (const w of waiters.splice(0)) w();
  });
  return {
    ws,
    messages,
    async next(pred = () => true, ms = 2000) {
      // Counted in real timer ticks: the test clock (Date) may be frozen.
      for (let waited = 0; ; waited += 25) {
        while (taken < messages.length) {
          const m = messages[taken++]!;
          if (pred(m)) return m;
        }
        if (waited >= ms) throw new Error(`no matching message; got ${JSON.stringify(messages)}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 25);
        });
      }
    },
    close: () => ws.close(1000, "done"),
  };
}

/** Opens a socket straight on a hub, as the Worker would after authenticating. */
export async function watchHub(stub: DurableObjectStub<PresenceHub>, after?: number, exp = Math.floor(Date.now() / 1000) + 3600): Promise<Socket> {
  const url = `https://presence.internal/ws${after === undefined ? "" : `?after=${after}`}`;
  const res = await stub.fetch(url, {
    headers: { upgrade: "websocket", "x-outpost-watcher": JSON.stringify({ sub: CALLER.sub, exp }) },
  });
  return socketOf(res);
}

/**
 * Restarts a hub as a redeploy would: the instance is aborted (memory gone, storage kept) and a new stub reaches a fresh
 * one. (evictDurableObject would wait for the hub to go idle, which it never does while a session is live.)
 */
export async function restart(stub: DurableObjectStub<PresenceHub>): Promise<DurableObjectStub<PresenceHub>> {
  await runInDurableObject(stub, (_hub, state) => state.abort("test: restart")).catch(() => undefined);
  return env.PRESENCE.get(stub.id);
}

export function hubIdOf(stub: DurableObjectStub<PresenceHub>): string {
  return stub.id.toString();
}

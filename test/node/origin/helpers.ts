// Helpers for the origin tests: assertions signed like the edge's (and deliberately wrong ones), event batches like the outbox's.
import { createHash, generateKeyPairSync, randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { importJWK, SignJWT, type JWK } from "jose";
import WebSocket from "ws";
import { startOrigin, type OriginOptions, type RunningOrigin } from "../../../origin/server.ts";
import { originDiagnostics } from "../../support/origin-diagnostics.ts";
import { TEST_SIGNING_KEY } from "../../support/identity.ts";
import { publicJwk } from "../../support/spawn-origin.ts";

/** The test stacks' PUBLIC_URL: the issuer every test origin expects. */
export const ISSUER = "http://localhost:8787";
export const EDGE_SUB = "outpost-edge";

export interface ErrorJson {
  error: { code: string; message: string; requestId: string };
}

export function otherKey(kid: string): JWK & { kid: string } {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return { ...(privateKey.export({ format: "jwk" }) as JWK), kid, alg: "ES256" };
}

export interface AssertionOptions {
  key?: JWK & { kid: string };
  kid?: string;
  typ?: string;
  iss?: string;
  aud?: string;
  sub?: string;
  email?: string;
  role?: string;
  jti?: string;
  /** Seconds added to "now" for iat (and exp). */
  iatOffset?: number;
  /** exp - iat, 60 by default. */
  ttl?: number;
  nbfOffset?: number;
  /** Signs body_sha256 for this body, as the outbox does. */
  body?: string | Uint8Array;
  claims?: Record<string, unknown>;
}

const keyCache = new Map<string, Promise<CryptoKey | Uint8Array>>();

/** An assertion as the edge mints it (owner, ES256, 60 s), with any part overridden. */
export async function assertion(method: string, htu: string, o: AssertionOptions = {}): Promise<string> {
  const jwk = o.key ?? TEST_SIGNING_KEY;
  let key = keyCache.get(jwk.kid + jwk.x);
  if (!key) keyCache.set(jwk.kid + jwk.x, (key = importJWK(jwk, "ES256") as Promise<CryptoKey>));
  const now = Math.floor(Date.now() / 1000) + (o.iatOffset ?? 0);
  const claims: Record<string, unknown> = {
    email: o.email ?? "owner@example.com",
    role: o.role ?? "owner",
    htm: method,
    htu,
    ...(o.body !== undefined ? { body_sha256: createHash("sha256").update(o.body).digest("base64url") } : {}),
    ...(o.nbfOffset !== undefined ? { nbf: now + o.nbfOffset } : {}),
    ...o.claims,
  };
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", typ: o.typ ?? "outpost-assertion+jwt", kid: o.kid ?? jwk.kid })
    .setIssuer(o.iss ?? ISSUER)
    .setAudience(o.aud ?? "origin")
    .setSubject(o.sub ?? "outpost:owner@example.com")
    .setJti(o.jti ?? randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + (o.ttl ?? 60))
    .sign(await key);
}

/** fetch() with a fresh valid assertion for exactly this method and path. */
export async function signedFetch(base: string, path: string, init: RequestInit = {}, o: AssertionOptions = {}): Promise<Response> {
  const method = (init.method ?? "GET").toUpperCase();
  const headers = new Headers(init.headers);
  headers.set("outpost-assertion", await assertion(method, path, o));
  return fetch(base + path, { ...init, headers });
}

/** JSON request helper on top of signedFetch. */
export async function api<T = unknown>(base: string, method: string, path: string, body?: unknown, o: AssertionOptions = {}) {
  const res = await signedFetch(
    base,
    path,
    { method, ...(body !== undefined ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}) },
    o,
  );
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as T };
}

export interface PresenceEventInput {
  seq: number;
  type: string;
  sessionId: string | null;
  at?: string;
  data?: Record<string, unknown>;
  hub?: string;
}

/** A presence event in the hub's wire form: id `${hub}:${seq}`. */
export function presenceEvent(e: PresenceEventInput) {
  return { id: `${e.hub ?? "origin"}:${e.seq}`, seq: e.seq, type: e.type, sessionId: e.sessionId, at: e.at ?? new Date().toISOString(), data: e.data ?? {} };
}

/** POSTs a batch exactly like the edge's outbox: sub outpost-edge, role system, body_sha256 of the bytes sent. */
export async function postEvents(base: string, events: unknown[], o: AssertionOptions = {}): Promise<Response> {
  const body = JSON.stringify({ events });
  const token = await assertion("POST", "/outpost/events", { sub: EDGE_SUB, email: "", role: "system", body, ...o });
  return fetch(`${base}/outpost/events`, { method: "POST", headers: { "content-type": "application/json", "outpost-assertion": token }, body });
}

export function tempDir(prefix = "outpost-origin-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The origin in this process, trusting the test key with the test stacks' issuer, with the test-only diagnostic routes. */
export function startTestOrigin(options: OriginOptions = {}): Promise<RunningOrigin> {
  return startOrigin({
    port: 0,
    issuer: ISSUER,
    jwks: { keys: [publicJwk(TEST_SIGNING_KEY)] },
    dataDir: ":memory:",
    log: () => {},
    extensions: [originDiagnostics],
    ...options,
  });
}

export interface CollectingSocket {
  ws: WebSocket;
  /** The next message not yet taken, waiting for it if needed. */
  next(timeoutMs?: number): Promise<string>;
}

/** Opens a WebSocket that queues every message from the first one on (a greeting sent on open is not lost). */
export function openCollecting(url: string, headers: Record<string, string> = {}): Promise<CollectingSocket> {
  const ws = new WebSocket(url.replace(/^http/, "ws"), { headers });
  const queue: string[] = [];
  const waiters: ((text: string) => void)[] = [];
  ws.on("message", (data) => {
    const text = Buffer.isBuffer(data) ? data.toString() : Buffer.concat(data as Buffer[]).toString();
    const waiter = waiters.shift();
    if (waiter) waiter(text);
    else queue.push(text);
  });
  const next = (timeoutMs = 5_000) =>
    new Promise<string>((resolve, reject) => {
      const queued = queue.shift();
      if (queued !== undefined) return resolve(queued);
      const timer = setTimeout(() => reject(new Error(`no WebSocket message within ${timeoutMs} ms`)), timeoutMs);
      waiters.push((text) => {
        clearTimeout(timer);
        resolve(text);
      });
    });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, next }));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once("error", reject);
  });
}

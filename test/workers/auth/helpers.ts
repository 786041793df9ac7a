// Helpers for the identity tests: call the Worker with settings overridden, mint tokens with real keys, reach the DO's tables.
import { createExecutionContext, env, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { decodeJwt, decodeProtectedHeader, importJWK, SignJWT, type JWK, type JWTPayload } from "jose";
import { expect } from "vitest";
import worker from "../../../worker/index.ts";
import { sha256 } from "../../../durable-objects/account/schema.ts";
import type { DeviceCodeResponse, TokenResponse } from "../../../shared/identity.ts";

export type TestEnv = Env & { TEST_PREVIOUS_SIGNING_KEY: string };
const testEnv = env as TestEnv;
export const BASE = "https://outpost.example.com";
const ISSUER = BASE;
export const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
/** The client_id the CLI names; device codes are bound to the client that asked for them. */
export const CLIENT_ID = "outpost-cli";
/** The one message every refused token gets, whatever check failed. */
export const INVALID_MESSAGE = "The access token is invalid or expired.";

export interface LogEntry {
  status: number;
  path: string;
  requestId: string;
  detail?: string;
}

const logs = new WeakMap<Response, LogEntry>();
let ipCounter = 0;

/**
 * A client IP nobody else uses, so per-IP rate limits of one test never spill into another: each in a /64 of its own,
 * since the edge counts IPv6 clients per /64.
 */
export function freshIp(): string {
  ipCounter++;
  const r = crypto.getRandomValues(new Uint16Array(1));
  return `2001:db8:${ipCounter.toString(16)}:${r[0]!.toString(16)}::1`;
}

/** A stable env object: the Worker caches its parsed config (and the identity caches) per env object. */
export function makeEnv(overrides: Partial<TestEnv> = {}): TestEnv {
  return { ...testEnv, ...overrides };
}

/** Calls the Worker with a given env object; captures the request's log line (see logOf) instead of printing it. */
export async function callEnv(workerEnv: TestEnv, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has("cf-connecting-ip")) headers.set("cf-connecting-ip", freshIp());
  const req = new Request(path.startsWith("http") ? path : `${BASE}${path}`, { ...init, headers });
  const ctx = createExecutionContext();
  const original = console.log;
  const lines: string[] = [];
  console.log = (...args: unknown[]) => {
    if (typeof args[0] === "string" && args[0].startsWith('{"msg":"request"')) lines.push(args[0]);
    else original(...args);
  };
  let res: Response;
  try {
    res = await worker.fetch(req, workerEnv, ctx);
    await waitOnExecutionContext(ctx);
  } finally {
    console.log = original;
  }
  const line = lines.at(-1);
  if (line) logs.set(res, JSON.parse(line) as LogEntry);
  return res;
}

/** Calls the Worker with a fresh env object (fresh caches) built from the test bindings plus overrides. */
export function call(path: string, init: RequestInit = {}, overrides: Partial<TestEnv> = {}): Promise<Response> {
  return callEnv(makeEnv(overrides), path, init);
}

/** The log line the Worker wrote for this response: its `detail` says why a request failed (logs only). */
export function logOf(res: Response): LogEntry {
  const entry = logs.get(res);
  if (!entry) throw new Error("no log line captured for this response");
  return entry;
}

export interface MintOptions {
  key?: JWK;
  alg?: string;
  typ?: string | null;
  kid?: string | null;
  header?: Record<string, unknown>;
  iatOffset?: number;
  ttl?: number;
  omit?: ("exp" | "iat" | "sub" | "jti" | "iss" | "aud" | "email")[];
}

export function signingJwk(): JWK & { kid: string } {
  return JSON.parse(testEnv.OUTPOST_SIGNING_KEY) as JWK & { kid: string };
}

export function previousJwk(): JWK & { kid: string } {
  return JSON.parse(testEnv.TEST_PREVIOUS_SIGNING_KEY) as JWK & { kid: string };
}

export function publicOf(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return pub;
}

/** Signs a JWT with a real key; defaults describe a valid Outpost access token for the owner. */
export async function mint(claims: JWTPayload, options: MintOptions = {}): Promise<string> {
  const jwk = options.key ?? signingJwk();
  const alg = options.alg ?? "ES256";
  const key = await importJWK(jwk, alg);
  const now = Math.floor(Date.now() / 1000) + (options.iatOffset ?? 0);
  const omit = new Set(options.omit ?? []);
  const payload: JWTPayload = {
    iss: ISSUER,
    aud: "outpost",
    sub: "outpost:owner@example.com",
    email: "owner@example.com",
    jti: crypto.randomUUID(),
    iat: now,
    exp: now + (options.ttl ?? 600),
    ...claims,
  };
  for (const k of omit) delete payload[k];
  const header: Record<string, unknown> = {
    alg,
    typ: options.typ === undefined ? "at+jwt" : options.typ,
    kid: options.kid === undefined ? jwk.kid : options.kid,
    ...options.header,
  };
  for (const k of Object.keys(header)) if (header[k] === null) delete header[k];
  return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(key);
}

/** An access token for a listed user (owner, member or viewer) with no device. */
export function tokenFor(role: "owner" | "member" | "viewer", claims: JWTPayload = {}): Promise<string> {
  return mint({ sub: `outpost:${role}@example.com`, email: `${role}@example.com`, ...claims });
}

export function b64url(data: string | Uint8Array): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** A compact JWS put together by hand, for headers and payloads no library would sign. */
export function rawJwt(header: Record<string, unknown>, payload: Record<string, unknown>, signature = ""): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${signature}`;
}

export function validPayload(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: ISSUER,
    aud: "outpost",
    sub: "outpost:owner@example.com",
    email: "owner@example.com",
    jti: crypto.randomUUID(),
    iat: now,
    exp: now + 600,
    ...extra,
  };
}

export { decodeJwt, decodeProtectedHeader };

export function bearer(token: string, extra: Record<string, string> = {}): RequestInit {
  return { headers: { authorization: `Bearer ${token}`, ...extra } };
}

export function jsonInit(body: unknown, headers: Record<string, string> = {}, method = "POST"): RequestInit {
  return { method, headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) };
}

export function formInit(fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit {
  return { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: new URLSearchParams(fields).toString() };
}

export async function errorOf(res: Response): Promise<{ code: string; message: string; requestId: string }> {
  const body = await res.json<{ error: { code: string; message: string; requestId: string } }>();
  return body.error;
}

/** The body of an OAuth endpoint's error (RFC 6749 §5.2). */
export interface OAuthError {
  error: string;
  error_description?: string;
  interval?: number;
}

/**
 * Asserts an OAuth endpoint's error: the status, RFC 6749 §5.2's shape (`error`, an ASCII `error_description` without
 * quotes or backslashes), and the no-store headers of §5.1. Returns the body.
 */
export async function expectOAuthError(res: Response, status: number, error: string): Promise<OAuthError> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(res.headers.get("cache-control")).toBe("no-store");
  expect(res.headers.get("pragma")).toBe("no-cache");
  const body = JSON.parse(text) as OAuthError;
  expect(body.error).toBe(error);
  expect(
    Object.keys(body).every((k) => ["error", "error_description", "interval"].includes(k)),
    text,
  ).toBe(true);
  if (body.error_description !== undefined) expect(body.error_description).toMatch(/^[\x20-\x21\x23-\x5b\x5d-\x7e]+$/);
  return body;
}

/** Asserts the uniform refusal of a bad token: 401 AUTH_INVALID, the same message, nothing about the token. */
export async function expectInvalid(res: Response, token?: string): Promise<LogEntry> {
  expect(res.status).toBe(401);
  expect(res.headers.get("www-authenticate")).toMatch(/^Bearer .*error="invalid_token"/);
  const text = await res.text();
  if (token) expect(text).not.toContain(token);
  const body = JSON.parse(text) as { error: { code: string; message: string } };
  expect(body.error.code).toBe("AUTH_INVALID");
  expect(body.error.message).toBe(INVALID_MESSAGE);
  const entry = logOf(res);
  expect(entry.detail, "the reason is logged").toBeTruthy();
  expect(text).not.toContain(entry.detail!);
  return entry;
}

export async function expectError(res: Response, status: number, code: string): Promise<string> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect((JSON.parse(text) as { error: { code: string } }).error.code).toBe(code);
  return text;
}

/** Runs SQL inside the account Durable Object (to move time, or to look at what is stored). */
export function sql<T = Record<string, SqlStorageValue>>(query: string, ...params: SqlStorageValue[]): Promise<T[]> {
  return runInDurableObject(testEnv.ACCOUNT.getByName("account"), (_instance, state) => state.storage.sql.exec(query, ...params).toArray() as T[]);
}

export { sha256 };

/** Makes the next poll of this device code count as on time. */
export async function rewindPoll(deviceCode: string, byMs?: number): Promise<void> {
  const hash = await sha256(deviceCode);
  if (byMs === undefined) await sql("UPDATE device_codes SET last_poll_at = NULL WHERE device_code_hash = ?", hash);
  else await sql("UPDATE device_codes SET last_poll_at = last_poll_at - ? WHERE device_code_hash = ?", byMs, hash);
}

export const ALLOWED_ORIGIN = { origin: BASE };

export type { DeviceCodeResponse, TokenResponse };

export async function startDeviceLogin(fields: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<DeviceCodeResponse> {
  const res = await call("/auth/device/code", jsonInit({ client_id: CLIENT_ID, hostname: "laptop", platform: "linux", arch: "x64", ...fields }, headers));
  expect(res.status).toBe(200);
  return res.json<DeviceCodeResponse>();
}

export function poll(deviceCode: string, workerEnv: TestEnv = makeEnv()): Promise<Response> {
  return callEnv(workerEnv, "/auth/device/token", formInit({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: CLIENT_ID }));
}

export async function decide(userCode: string, decision: string, token: string, headers: Record<string, string> = ALLOWED_ORIGIN): Promise<Response> {
  return call("/auth/device/approve", jsonInit({ user_code: userCode, decision }, { authorization: `Bearer ${token}`, ...headers }));
}

/** A complete device-code login approved by the given listed user: a CLI device with access and refresh tokens. */
export async function deviceLogin(role: "owner" | "member" | "viewer" = "owner", fields: Record<string, unknown> = {}): Promise<TokenResponse> {
  const dc = await startDeviceLogin(fields);
  const approve = await decide(dc.user_code, "approve", await tokenFor(role));
  expect(approve.status).toBe(200);
  const res = await poll(dc.device_code);
  expect(res.status).toBe(200);
  return res.json<TokenResponse>();
}

export function refresh(refreshToken: string, workerEnv: TestEnv = makeEnv()): Promise<Response> {
  return callEnv(workerEnv, "/auth/token", formInit({ grant_type: "refresh_token", refresh_token: refreshToken }));
}

export function cookieValue(setCookie: string | null, name: string): string | null {
  if (!setCookie) return null;
  const match = new RegExp(`(?:^|,\\s*)${name}=([^;]*)`).exec(setCookie);
  return match ? match[1]! : null;
}

// The CLI's only network client: JSON requests to the edge, with timeouts, one refresh-and-retry on 401, and errors
// mapped to exit codes. Tokens go in the Authorization header only and never into messages.
import type { ErrorBody } from "../../shared/errors.ts";
import type { OAuthErrorBody } from "../../shared/identity.ts";
import { CliError, EXIT } from "./errors.ts";
import { request, type HttpResponse } from "./request.ts";
import { USER_AGENT } from "./version.ts";

export interface TokenSource {
  /** An access token for the edge; `force` asks for a fresh one (after a 401). */
  accessToken(force?: boolean): Promise<string>;
  /** Whether a 401 is worth a refresh-and-retry. */
  readonly canRefresh: boolean;
}

export interface RequestOptions {
  method?: string;
  json?: unknown;
  form?: Record<string, string>;
  /** Send the bearer token (default: true when the client has a token source). */
  auth?: boolean;
  timeoutMs?: number;
  headers?: Record<string, string>;
}

/**
 * An error answer from the edge: Outpost's ErrorBody, or on the OAuth endpoints RFC 6749's OAuthErrorBody. Decisions
 * read `code`, `interval` and `retryAfter`, never the message.
 */
export class EdgeError extends Error {
  readonly status: number;
  /** ErrorBody's `error.code` or OAuthErrorBody's `error`, or HTTP_<status> when the body had neither. */
  readonly code: string;
  /** The Retry-After header in seconds (rate limits, and the device login's polling interval). */
  readonly retryAfter: number | null;
  /** OAuthErrorBody's `interval`: the polling interval a device login must keep from now on. */
  readonly interval: number | null;

  constructor(status: number, code: string, message: string, retryAfter: number | null, interval: number | null = null) {
    super(message);
    this.name = "EdgeError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.interval = interval;
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;

export function debug(message: string): void {
  if (process.env.OUTPOST_DEBUG) process.stderr.write(`[outpost debug] ${message}\n`);
}

/** Network failures (refused, DNS, timeout) as exit code 5. */
export function unreachable(base: string, err: unknown): CliError {
  const timedOut = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const why = timedOut ? "timed out" : code ? code : "connection failed";
  return new CliError(EXIT.UNREACHABLE, `cannot reach the edge at ${base} (${why})`, {
    hint: "Check the URL and your connection; `outpost doctor` checks the setup.",
    cause: err,
  });
}

export class EdgeClient {
  readonly base: string;
  readonly tokens: TokenSource | null;

  constructor(base: string, tokens: TokenSource | null = null) {
    this.base = base;
    this.tokens = tokens;
  }

  /** One HTTP exchange; network failures throw CliError(UNREACHABLE), HTTP errors are returned as responses. */
  async fetch(path: string, options: RequestOptions = {}, token?: string): Promise<HttpResponse> {
    const headers: Record<string, string> = { "user-agent": USER_AGENT, accept: "application/json", ...options.headers };
    let body: string | undefined;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (options.form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(options.form).toString();
    }
    if (token) headers.authorization = `Bearer ${token}`;
    const method = options.method ?? (body === undefined ? "GET" : "POST");
    const started = Date.now();
    try {
      const res = await request(new URL(path, this.base), { method, headers, body, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS });
      debug(`${method} ${path} -> ${res.status} (${Date.now() - started} ms)`);
      return res;
    } catch (err) {
      debug(`${method} ${path} -> ${err instanceof Error ? err.name : "error"} (${Date.now() - started} ms)`);
      throw unreachable(this.base, err);
    }
  }

  /** A JSON request; a non-2xx answer throws EdgeError. With a token source, a 401 refreshes once and retries. */
  async request<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const useAuth = options.auth ?? this.tokens !== null;
    let token = useAuth && this.tokens ? await this.tokens.accessToken() : undefined;
    let res = await this.fetch(path, options, token);
    if (res.status === 401 && useAuth && this.tokens?.canRefresh) {
      res.cancel();
      token = await this.tokens.accessToken(true);
      res = await this.fetch(path, options, token);
    }
    return readJson<T>(res);
  }
}

export async function readJson<T>(res: HttpResponse): Promise<T> {
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (res.ok) {
    if (data === null && text)
      throw new CliError(EXIT.EDGE, `the edge answered ${res.status} with something that is not JSON`, { hint: "Is --url the Outpost edge?" });
    return data as T;
  }
  throw edgeError(res, data);
}

/** Either error shape, checked field by field: a proxy in front of the edge may answer anything. */
function edgeError(res: HttpResponse, data: unknown): EdgeError {
  const fallback = `the edge answered ${res.status} ${res.statusText}`.trim();
  const wait = retryAfter(res.headers.get("retry-after"));
  const error = (data as { error?: unknown } | null)?.error;
  if (typeof error === "string" && error !== "") {
    const oauth = data as Partial<Record<keyof OAuthErrorBody, unknown>>;
    const message = typeof oauth.error_description === "string" && oauth.error_description ? oauth.error_description : fallback;
    const interval = typeof oauth.interval === "number" && Number.isInteger(oauth.interval) && oauth.interval > 0 ? oauth.interval : null;
    return new EdgeError(res.status, error, message, wait, interval);
  }
  const outpost = typeof error === "object" && error !== null ? (error as Partial<Record<keyof ErrorBody["error"], unknown>>) : null;
  const code = typeof outpost?.code === "string" ? outpost.code : `HTTP_${res.status}`;
  const message = typeof outpost?.message === "string" ? outpost.message : fallback;
  return new EdgeError(res.status, code, message, wait);
}

/** Retry-After in seconds; null when absent or not a number of seconds (the edge never sends a date). */
function retryAfter(header: string | null): number | null {
  const seconds = header === null || header.trim() === "" ? NaN : Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

/** An EdgeError as the CLI reports it. */
function edgeErrorToCli(err: EdgeError): CliError {
  const message = `${err.message.replace(/\.$/, "")} (${err.code})`;
  if (err.status === 401) return new CliError(EXIT.AUTH, message, { hint: "Run `outpost login`.", code: err.code });
  if (err.status === 403) return new CliError(EXIT.AUTH, message, { hint: "Ask an owner of this gateway for access.", code: err.code });
  if (err.status === 404) return new CliError(EXIT.FAILURE, message, { code: err.code });
  if (err.status === 429) {
    return new CliError(EXIT.EDGE, message, { hint: `Try again in ${err.retryAfter ?? 60} s.`, code: err.code });
  }
  if (err.code === "CONFIG_INVALID")
    return new CliError(EXIT.EDGE, message, { hint: "Run `outpost doctor`; the edge's settings need fixing.", code: err.code });
  return new CliError(EXIT.EDGE, message, { hint: "Run `outpost doctor`.", code: err.code });
}

/** Calls `fn`, reporting edge errors as CLI errors. */
export async function edgeCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof EdgeError) throw edgeErrorToCli(err);
    throw err;
  }
}

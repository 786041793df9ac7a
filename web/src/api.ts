// Calls to the edge: the in-memory bearer token, one silent renewal when it is refused, no redirects followed, typed errors.
import { useEffect, useState } from "preact/hooks";
import { accessToken, renewAfterRefusal } from "./auth.ts";
import { noteServerDate } from "./lib.ts";
import type { ErrorBody } from "../../shared/errors.ts";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
}

const UNREACHABLE = "The edge cannot be reached. Check your connection and try again.";

/**
 * A JSON call to the edge. A redirect is never followed (an expired session behind an access proxy would otherwise land
 * the app on someone else's login page): like a 401, it renews the token once and otherwise signs out in place.
 */
export async function api<T>(path: string, options: CallOptions = {}): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    let token: string | null;
    try {
      token = await accessToken();
    } catch {
      throw new ApiError(0, "UNREACHABLE", UNREACHABLE);
    }
    if (!token) throw new ApiError(401, "AUTH_REQUIRED", "Sign in to continue.");
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "application/json" };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(path, {
        method: options.method ?? "GET",
        headers,
        body: options.body === undefined ? null : JSON.stringify(options.body),
        signal: options.signal ?? null,
        redirect: "manual",
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw new ApiError(0, "UNREACHABLE", UNREACHABLE);
    }
    noteServerDate(res.headers.get("date"));
    const refused = res.status === 401 || res.type === "opaqueredirect" || (res.status >= 300 && res.status < 400);
    if (refused) {
      if (attempt === 0 && (await renewAfterRefusal())) continue;
      throw new ApiError(401, "AUTH_REQUIRED", "Your session has ended. Sign in again to continue.");
    }
    const text = await res.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!res.ok) {
      // Whatever answered may not be the edge (a captive portal, a proxy): every field may be missing.
      const error = (body as { error?: Partial<ErrorBody["error"]> } | null)?.error;
      throw new ApiError(res.status, error?.code ?? `HTTP_${res.status}`, error?.message ?? `The edge answered ${res.status}.`);
    }
    return body as T;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export type Loaded<T> = { state: "loading"; data?: T } | { state: "ready"; data: T } | { state: "error"; error: ApiError | Error; data?: T };

/** Loads `path` when it (or `version`) changes; the previous data stays visible while reloading. */
export function useApi<T>(path: string | null, version: unknown = 0): [Loaded<T>, () => void] {
  const [result, setResult] = useState<Loaded<T>>({ state: "loading" });
  const [nonce, setNonce] = useState(0);
  useEffect(() => {
    if (!path) return;
    const ctrl = new AbortController();
    setResult((prev) => ({ state: "loading", ...(prev.data !== undefined ? { data: prev.data } : {}) }));
    api<T>(path, { signal: ctrl.signal }).then(
      (data) => setResult({ state: "ready", data }),
      (error: ApiError | Error) => {
        if (!ctrl.signal.aborted) setResult((prev) => ({ state: "error", error, ...(prev.data !== undefined ? { data: prev.data } : {}) }));
      },
    );
    return () => ctrl.abort();
  }, [path, version, nonce]);
  return [result, () => setNonce((n) => n + 1)];
}

// Who the CLI is at the edge: OUTPOST_TOKEN, or the credentials file (refreshed shortly before the token expires).
import { CliError, EXIT, authError } from "./errors.ts";
import { readCredentials, requireEdge, withCredentialsLock, writeCredentials, type Credentials, type EdgeTarget } from "./config.ts";
import { EdgeClient, EdgeError, debug, readJson, unreachable, type TokenSource } from "./http.ts";
import { request, type HttpResponse } from "./request.ts";
import { USER_AGENT } from "./version.ts";
import { CLI_CLIENT_ID, type TokenResponse } from "../../shared/identity.ts";
import { PATHS } from "../../shared/paths.ts";

/** Refresh when the access token has less than this left. */
const REFRESH_MARGIN_MS = 2 * 60 * 1000;

export class Session implements TokenSource {
  readonly edge: EdgeTarget;
  /** "env" (OUTPOST_TOKEN), "file" (credentials file for this edge) or "none". */
  readonly source: "env" | "file" | "none";
  #creds: Credentials | null;
  readonly #envToken: string | null;

  constructor(edge: EdgeTarget, creds: Credentials | null, envToken: string | null) {
    this.edge = edge;
    this.#envToken = envToken;
    // Stored tokens belong to one edge and are never sent to another.
    this.#creds = creds && sameOrigin(creds.url, edge.url) ? creds : null;
    this.source = envToken ? "env" : this.#creds ? "file" : "none";
  }

  /** The edge (flags, environment, file) and the token for it; the credentials file is read only when needed. */
  static load(urlFlag: unknown): Session {
    const creds = readCredentials();
    const edge = requireEdge(urlFlag, creds);
    return new Session(edge, creds, process.env.OUTPOST_TOKEN?.trim() || null);
  }

  get credentials(): Credentials | null {
    return this.#creds;
  }

  get canRefresh(): boolean {
    return this.source === "file";
  }

  get signedIn(): boolean {
    return this.source !== "none";
  }

  /** Milliseconds since the epoch when the current access token expires, when known. */
  get expiresAt(): number | null {
    if (this.source === "file") return this.#creds!.expires_at;
    if (this.#envToken) return jwtExpiry(this.#envToken);
    return null;
  }

  client(): EdgeClient {
    return new EdgeClient(this.edge.url, this.signedIn ? this : null);
  }

  async accessToken(force = false): Promise<string> {
    if (this.#envToken) return this.#envToken;
    const creds = this.#creds;
    if (!creds) throw authError(`not signed in to ${this.edge.url}`);
    if (!force && creds.expires_at - Date.now() > REFRESH_MARGIN_MS) return creds.access_token;
    try {
      return (await this.refresh(force)).access_token;
    } catch (err) {
      // Offline with a token that is still valid: use it, and refresh on a later call.
      if (!force && err instanceof CliError && err.exitCode === EXIT.UNREACHABLE && creds.expires_at > Date.now()) {
        return creds.access_token;
      }
      throw err;
    }
  }

  /** Rotates the refresh token under the credentials lock; another process's fresh rotation is adopted instead. */
  async refresh(force = false): Promise<Credentials> {
    const before = this.#creds;
    if (!before) throw authError(`not signed in to ${this.edge.url}`);
    const next = await withCredentialsLock(async () => {
      const onDisk = readCredentials();
      if (!onDisk || !sameOrigin(onDisk.url, this.edge.url)) throw authError("you were signed out meanwhile");
      const rotatedElsewhere = onDisk.refresh_token !== before.refresh_token;
      if (rotatedElsewhere && (!force || onDisk.access_token !== before.access_token) && onDisk.expires_at - Date.now() > REFRESH_MARGIN_MS) {
        debug("adopting credentials refreshed by another process");
        return onDisk;
      }
      const refreshed = onDisk.provider === "supabase" ? await refreshSupabase(onDisk) : await refreshOutpost(this.edge.url, onDisk);
      writeCredentials(refreshed);
      return refreshed;
    });
    this.#creds = next;
    return next;
  }
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

/** A JWT's exp in milliseconds, without verifying it (only to decide when to warn). */
function jwtExpiry(token: string): number | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const exp = (JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp * 1000 : null;
  } catch {
    return null;
  }
}

export function credentialsFromTokens(url: string, tokens: TokenResponse, email?: string): Credentials {
  return {
    version: 1,
    url,
    provider: "outpost",
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    expires_at: Date.now() + tokens.expires_in * 1000,
    device_id: tokens.device_id,
    ...(email ? { email } : {}),
  };
}

async function refreshOutpost(url: string, creds: Credentials): Promise<Credentials> {
  const client = new EdgeClient(url);
  let tokens: TokenResponse;
  try {
    tokens = await client.request<TokenResponse>(PATHS.deviceToken, {
      auth: false,
      form: { grant_type: "refresh_token", refresh_token: creds.refresh_token, client_id: CLI_CLIENT_ID },
    });
  } catch (err) {
    if (err instanceof EdgeError && (err.code === "invalid_grant" || err.code === "access_denied")) {
      throw authError("your session has ended (signed out, revoked or expired)", "Run `outpost login` again.", err.code);
    }
    if (err instanceof EdgeError) throw new CliError(EXIT.EDGE, `refreshing the session failed: ${err.message}`, { code: err.code });
    throw err;
  }
  return { ...credentialsFromTokens(url, tokens, creds.email) };
}

async function refreshSupabase(creds: Credentials): Promise<Credentials> {
  const sb = creds.supabase;
  if (!sb) throw authError("the stored Supabase session lacks its project settings", "Run `outpost login --email` again.");
  let res: HttpResponse;
  try {
    res = await request(new URL(`${sb.url}/auth/v1/token?grant_type=refresh_token`), {
      method: "POST",
      headers: { apikey: sb.anon_key, "content-type": "application/json", "user-agent": USER_AGENT },
      body: JSON.stringify({ refresh_token: creds.refresh_token }),
      timeoutMs: 10_000,
    });
  } catch (err) {
    throw unreachable(sb.url, err);
  }
  if (res.status === 400 || res.status === 401) {
    res.cancel();
    throw authError("your Supabase session has ended", "Run `outpost login --email` again.");
  }
  let data: { access_token?: string; refresh_token?: string; expires_in?: number; expires_at?: number };
  try {
    data = await readJson(res);
  } catch (err) {
    if (err instanceof EdgeError) throw new CliError(EXIT.EDGE, `Supabase refused the refresh: ${err.message}`);
    throw err;
  }
  if (!data.access_token || !data.refresh_token) throw new CliError(EXIT.EDGE, "Supabase answered the refresh without tokens");
  return {
    ...creds,
    access_token: data.access_token,
    refresh_token: data.refresh_token,
    expires_at: data.expires_at ? data.expires_at * 1000 : Date.now() + (data.expires_in ?? 3600) * 1000,
  };
}

// Per-isolate caches that keep the hot path cheap: verified tokens (by hash, never past exp) and device status.
import type { AuthConfig } from "../../shared/settings/index.ts";
import type { Identity } from "./tokens.ts";

const MAX_ENTRIES = 1000;
/** How stale a device's revocation status may be; revocation takes effect within this time plus a request. */
export const DEVICE_STATUS_TTL_MS = 30_000;

const verified = new WeakMap<AuthConfig, Map<string, Identity>>();
const devices = new WeakMap<AuthConfig, Map<string, { revoked: boolean; checkedAt: number }>>();

function bucket<V>(store: WeakMap<AuthConfig, Map<string, V>>, auth: AuthConfig): Map<string, V> {
  let map = store.get(auth);
  if (!map) {
    map = new Map();
    store.set(auth, map);
  }
  return map;
}

/** SHA-256 of the token: the cache never holds a usable credential. */
export async function tokenKey(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

export function cachedIdentity(auth: AuthConfig, key: string): Identity | null {
  const map = bucket(verified, auth);
  const hit = map.get(key);
  if (!hit) return null;
  if (hit.exp * 1000 <= Date.now()) {
    map.delete(key);
    return null;
  }
  return hit;
}

export function rememberIdentity(auth: AuthConfig, key: string, identity: Identity): void {
  const map = bucket(verified, auth);
  if (map.size >= MAX_ENTRIES) map.delete(map.keys().next().value!);
  map.set(key, identity);
}

export function cachedDeviceStatus(auth: AuthConfig, deviceId: string): boolean | null {
  const hit = bucket(devices, auth).get(deviceId);
  return hit && Date.now() - hit.checkedAt < DEVICE_STATUS_TTL_MS ? hit.revoked : null;
}

export function rememberDeviceStatus(auth: AuthConfig, deviceId: string, revoked: boolean): void {
  const map = bucket(devices, auth);
  if (map.size >= MAX_ENTRIES) map.delete(map.keys().next().value!);
  map.set(deviceId, { revoked, checkedAt: Date.now() });
}

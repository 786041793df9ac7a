// Plain http only to this machine: a URL that carries tokens or assertions to another host must use https unless a setting says so.

/**
 * Loopback: `localhost`, 127.0.0.0/8 and [::1], as URL.hostname spells them (the URL parser has already turned
 * `127.1` or `0x7f.0.0.1` into `127.0.0.1`, and lower-cased names).
 */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** Whether this URL would send requests in the clear over a network: `http:` to a host that is not loopback. */
export function isPlainHttpToNetwork(url: URL): boolean {
  return url.protocol === "http:" && !isLoopbackHost(url.hostname);
}

/** The reason a setting gives when it is refused for that; `allowWith` names what allows it (a setting or a flag). */
export function plainHttpReason(allowWith: string): string {
  return `must use https:// for a host that is not loopback (localhost, 127.0.0.0/8, [::1]); ${allowWith} allows plain http`;
}

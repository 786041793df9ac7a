// The network a client comes from, as the edge keys its limits: an IPv4 address, or the /64 of an IPv6 address
// (one IPv6 subscriber usually holds a whole /64, so limiting single addresses would limit nothing), and where
// Cloudflare places it.
import type { Context } from "hono";
import type { AppEnv } from "../types.ts";

/** The eight 16-bit groups of an IPv6 address, or null when the text is not one. */
function ipv6Groups(text: string): number[] | null {
  const address = text.replace(/%.*$/, "");
  const halves = address.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string): number[] | null => {
    if (part === "") return [];
    const groups: number[] = [];
    const pieces = part.split(":");
    for (const [i, piece] of pieces.entries()) {
      // An IPv4 tail (::ffff:192.0.2.1) fills the last two groups.
      if (i === pieces.length - 1 && piece.includes(".")) {
        const [a = -1, b = 0, c = 0, d = 0] = ipv4Octets(piece) ?? [];
        if (a < 0) return null;
        groups.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9a-f]{1,4}$/i.test(piece)) {
        groups.push(Number.parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return groups;
  };
  const [first = "", second] = halves;
  const head = parse(first);
  const tail = second === undefined ? [] : parse(second);
  if (!head || !tail) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const missing = 8 - head.length - tail.length;
  return missing >= 1 ? [...head, ...new Array<number>(missing).fill(0), ...tail] : null;
}

function ipv4Octets(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return null;
  return parts.map(Number);
}

/**
 * The key the edge limits a client by: an IPv4 address as it is (IPv4-mapped IPv6 included), an IPv6 address as its
 * /64 (`2001:db8:1:2::/64`). Anything else (no address: `local`) is its own key.
 */
export function networkOf(ip: string): string {
  if (ipv4Octets(ip)) return ip;
  const groups = ipv6Groups(ip);
  if (!groups) return ip;
  const [, , , , , marker, high = 0, low = 0] = groups;
  const mapped = groups.slice(0, 5).every((g) => g === 0) && marker === 0xffff;
  if (mapped) return [high >> 8, high & 0xff, low >> 8, low & 0xff].join(".");
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(":")}::/64`;
}

/** Where Cloudflare places the request's network; all empty where there is no `cf` (local runs without one). */
export function placeOf(c: Context<AppEnv>): { country: string; city: string; asn: number | null; asOrganization: string } {
  const cf = (c.req.raw as { cf?: Partial<Pick<IncomingRequestCfProperties, "country" | "city" | "asn" | "asOrganization">> }).cf;
  const text = (value: unknown, max: number) => (typeof value === "string" ? value.slice(0, max) : "");
  return {
    country: text(cf?.country, 2).toUpperCase(),
    city: text(cf?.city, 64),
    asn: typeof cf?.asn === "number" && Number.isInteger(cf.asn) ? cf.asn : null,
    asOrganization: text(cf?.asOrganization, 128),
  };
}

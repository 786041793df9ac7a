// outpost devices [revoke <id>]: the CLIs and browsers signed in to this gateway.
import type { CAC } from "cac";
import { stringOpt, type Options } from "../lib/args.ts";
import { authError, usageError } from "../lib/errors.ts";
import { edgeCall } from "../lib/http.ts";
import { out, relativeTime, table } from "../lib/output.ts";
import { Session } from "../lib/session.ts";
import type { DeviceList, DeviceRevoked } from "../../shared/api-types.ts";
import { DEVICE_ID_PATTERN } from "../../shared/limits.ts";
import { devicePath, PATHS } from "../../shared/paths.ts";

export function registerDevices(cli: CAC): void {
  cli
    .command("devices [action] [id]", "List the devices signed in to the gateway; `devices revoke <id>` signs one out")
    .option("--url <url>", "The edge URL")
    .option("--json", "Print JSON")
    .option("--all", "Include revoked devices")
    .example("  $ outpost devices")
    .example("  $ outpost devices --json")
    .example("  $ outpost devices revoke dev_AbC123")
    .action((action: string | undefined, id: string | undefined, options: Options) => {
      if (action === undefined) return list(options);
      if (String(action) === "revoke") return revoke(id === undefined ? undefined : String(id), options);
      throw usageError(`unknown devices action ${JSON.stringify(String(action))}`, "Use `outpost devices` or `outpost devices revoke <id>`.");
    });
}

function signedIn(options: Options): Session {
  const session = Session.load(stringOpt(options, "url"));
  if (!session.signedIn) throw authError(`not signed in to ${session.edge.url}`);
  return session;
}

async function list(options: Options): Promise<void> {
  const session = signedIn(options);
  const body = await edgeCall(() => session.client().request<DeviceList>(PATHS.devices));
  if (options.json) return out.json(body);
  const devices = body.devices.filter((d) => options.all || d.revokedAt === null);
  const linked = new Set(body.originLinks.map((l) => l.deviceId));
  if (devices.length === 0) out.line("No devices.");
  else {
    out.line(
      table(
        ["ID", "KIND", "NAME", "HOST", "EMAIL", "LAST SEEN", "STATE"],
        devices.map((d) => [
          d.id,
          d.kind,
          d.name,
          [d.hostname, d.platform].filter(Boolean).join(" / "),
          d.email,
          relativeTime(d.lastSeenAt),
          [d.revokedAt !== null ? "revoked" : d.id === body.current ? "this device" : "active", linked.has(d.id) && d.revokedAt === null ? "origin linked" : ""]
            .filter(Boolean)
            .join(", "),
        ]),
      ),
    );
  }
  // A link whose credential names no device (OUTPOST_TOKEN) has no row above.
  for (const l of body.originLinks.filter((l) => l.deviceId === null)) out.line(`origin link by ${l.email} (a token with no device), since ${l.connectedAt}`);
}

async function revoke(id: string | undefined, options: Options): Promise<void> {
  if (!id) throw usageError("missing the device id", "Usage: outpost devices revoke <id> (ids come from `outpost devices`).");
  if (!DEVICE_ID_PATTERN.test(id)) throw usageError(`${JSON.stringify(id)} is not a device id (they look like dev_…)`, "List them with `outpost devices`.");
  const session = signedIn(options);
  const body = await edgeCall(() => session.client().request<DeviceRevoked>(devicePath(id), { method: "DELETE" }));
  if (options.json) return out.json(body);
  const self = session.credentials?.device_id === id;
  out.line(`Revoked ${id}${body.device ? ` (${body.device.name} on ${body.device.hostname || "unknown host"})` : ""}.`);
  if (self) out.line("That was this computer: run `outpost login` to sign in again.");
}

// /api/devices, the devices signed in to this gateway (CLIs and browsers), and /api/enroll-links, owner-minted enrollment links.
import { Hono } from "hono";
import { readFields } from "../body.ts";
import { accountStub } from "../../durable-objects/account/index.ts";
import { roleFor } from "../../shared/settings/index.ts";
import { grantedRoles } from "../auth/grants.ts";
import { mintEnrollmentLink } from "../../shared/enrollment.ts";
import { rememberDeviceStatus } from "../auth/identity-cache.ts";
import { authConfigOf, requireAuth } from "../auth/middleware.ts";
import { OutpostError } from "../../shared/errors.ts";
import { requiredString } from "../../shared/fields.ts";
import type { AppEnv } from "../types.ts";
import type { DeviceList, DeviceRevoked } from "../../shared/api-types.ts";
import { DEVICE_ID_PATTERN } from "../../shared/limits.ts";
import { presenceStub } from "./presence.ts";

export const devices = new Hono<AppEnv>();

devices.get("/", requireAuth(), async (c) => {
  const identity = c.get("identity");
  // Owners see every device (and origin link); everyone else sees their own.
  const owner = identity.role === "owner";
  const [list, links] = await Promise.all([accountStub(c.env).listDevices(owner ? null : identity.sub), presenceStub(c.env).originLinks()]);
  const mine = new Set(list.map((d) => d.id));
  const originLinks = links.filter((l) => owner || (l.deviceId ? mine.has(l.deviceId) : l.email === identity.email));
  c.header("Cache-Control", "no-store");
  return c.json({ devices: list, current: identity.deviceId, originLinks } satisfies DeviceList);
});

devices.delete("/:id", requireAuth(), async (c) => {
  const auth = authConfigOf(c);
  const identity = c.get("identity");
  const id = c.req.param("id");
  if (!DEVICE_ID_PATTERN.test(id)) throw new OutpostError("BAD_REQUEST", "Not a device id.");
  const stub = accountStub(c.env);
  const device = await stub.getDevice(id);
  if (!device) throw new OutpostError("NOT_FOUND", "No such device.");
  if (identity.role !== "owner" && device.sub !== identity.sub) {
    throw new OutpostError("FORBIDDEN", "Only an owner can revoke another user's device.");
  }
  const revoked = await stub.revokeDevice(id);
  rememberDeviceStatus(auth, id, true);
  // Its open sockets (an origin's link among them) close now, not at the hub's next sweep.
  await presenceStub(c.env).closeDevice(id);
  return c.json({ device: revoked } satisfies DeviceRevoked);
});

export const enrollLinks = new Hono<AppEnv>();

enrollLinks.post("/", requireAuth({ ownerOnly: true }), async (c) => {
  const auth = authConfigOf(c);
  const f = await readFields(c, 4096);
  const email = requiredString(f, "email", 254).toLowerCase();
  if (!roleFor(auth, email, await grantedRoles(c.env))) {
    throw new OutpostError("BAD_REQUEST", "Grant this email a role first (PUT /api/access/:email), or add it to OWNER_EMAILS, MEMBER_EMAILS or VIEWER_EMAILS.");
  }
  const link = await mintEnrollmentLink({ signingKey: auth.signingKey, publicUrl: auth.issuer, email });
  c.header("Cache-Control", "no-store");
  return c.json({ url: link.url, expires_in: link.expiresIn });
});

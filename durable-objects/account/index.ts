// The account's identity state at the edge: one Durable Object for device-code logins, devices, rotating refresh
// tokens, the access list's grants and single-use ids; each concern lives in its own file, this is the RPC surface.
import { DurableObject } from "cloudflare:workers";
import type { DeviceRecord } from "../../shared/api-types.ts";
import { AlarmScheduler } from "./alarm.ts";
import { DeviceLogins, type ClientInfo, type CodeSource, type LookupResult, type PollResult } from "./device-login.ts";
import { Devices } from "./devices.ts";
import { Grants, SingleUse, type GrantRecord } from "./grants.ts";
import { RefreshTokens, type Grant, type RefreshResult } from "./refresh-tokens.ts";
import { migrate } from "./schema.ts";

export type { ClientInfo, DeviceRecord, Grant, GrantRecord, LookupResult, PollResult, RefreshResult };

/** The backstop sweep, for what has no timer of its own (single-use ids, idle refresh tokens, guess windows). */
const SWEEP_EVERY_MS = 60 * 60 * 1000;
/** Alarms at least this far apart, so rows due one after another are pruned in one wake-up. */
const MIN_ALARM_GAP_MS = 1000;

/** The one account Durable Object of this deployment, by name. */
export function accountStub(env: Env): DurableObjectStub<AccountDO> {
  return env.ACCOUNT.getByName("account");
}

export class AccountDO extends DurableObject<Env> {
  readonly #logins: DeviceLogins;
  readonly #devices: Devices;
  readonly #tokens: RefreshTokens;
  readonly #grants: Grants;
  readonly #singleUse: SingleUse;
  readonly #alarm: AlarmScheduler;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    migrate(sql);
    this.#devices = new Devices(sql);
    this.#tokens = new RefreshTokens(sql, this.#devices);
    this.#logins = new DeviceLogins(sql, this.#tokens);
    this.#grants = new Grants(sql);
    this.#singleUse = new SingleUse(sql);
    this.#alarm = new AlarmScheduler(ctx.storage, [
      {
        // Device codes and sealed refresh tokens when they are due, everything else (single-use ids, idle refresh
        // tokens, guess windows) at the hourly backstop sweep; never more than once a second.
        nextDue: (now) =>
          Math.max(Math.min(this.#logins.nextDue() ?? Infinity, this.#tokens.nextDue() ?? Infinity, now + SWEEP_EVERY_MS), now + MIN_ALARM_GAP_MS),
        run: (now) => {
          this.#logins.prune(now);
          this.#singleUse.prune(now);
          this.#tokens.prune(now);
        },
      },
      // Grants end on time: they stop being listed at once, and their rows go when they end.
      { nextDue: () => this.#grants.nextExpiry(), run: (now) => this.#grants.prune(now) },
    ]);
  }

  /** Whatever stores something that expires brings the one alarm forward to it (alarm.ts). */
  async #arm(): Promise<void> {
    await this.#alarm.schedule();
  }

  /** Deletes what has expired or ended and sets the alarm for what is next; safe to run any number of times. */
  override async alarm(): Promise<void> {
    await this.#alarm.fire();
  }

  // --- device-code login ---

  /** `intervalS` is the polling interval the Worker's settings give; a client polling faster is slowed down. */
  async createDeviceCode(client: ClientInfo, intervalS: number): Promise<{ deviceCode: string; userCode: string; expiresIn: number; interval: number }> {
    const created = await this.#logins.create(client, intervalS);
    await this.#arm();
    return created;
  }

  /** `clientId` is the client_id the poll names; a code issued to another client answers wrong_client and changes nothing. */
  async pollDeviceCode(deviceCode: string, clientId: string): Promise<PollResult> {
    return this.#logins.poll(deviceCode, clientId);
  }

  /** `network` is the approver's IPv4 address or IPv6 /64 (wrong codes are capped per user, network and overall). */
  async lookupUserCode(userCode: string, approverSub: string, network: string, source: CodeSource = "typed"): Promise<LookupResult> {
    const result = await this.#logins.lookup(userCode, approverSub, network, source);
    if (!result.ok) await this.#arm();
    return result;
  }

  /** `confirm`: what the approver typed to confirm a code opened from a link (device-login.ts). */
  async decideUserCode(userCode: string, approver: { sub: string; email: string }, approve: boolean, network: string, confirm = ""): Promise<LookupResult> {
    const result = await this.#logins.decide(userCode, approver, approve, network, confirm);
    if (!result.ok) await this.#arm();
    return result;
  }

  // --- devices and refresh tokens ---

  /** Rotates a refresh token (see RefreshTokens.rotate); `clientId` is the client_id the request names, or "". */
  async refresh(refreshToken: string, clientId = ""): Promise<RefreshResult> {
    const result = await this.#tokens.rotate(refreshToken, clientId);
    if (result.ok) await this.#arm();
    return result;
  }

  /** Revokes the device a refresh token belongs to; its id, or null (nothing changed) for an unknown token. */
  async revokeByRefresh(refreshToken: string, reason: "logout" | "revoked" = "logout"): Promise<string | null> {
    return this.#tokens.revokeByToken(refreshToken, reason);
  }

  async revokeDevice(id: string): Promise<DeviceRecord | null> {
    if (!this.#devices.get(id)) return null;
    this.#tokens.revokeDevice(id, "revoked");
    return this.#devices.get(id);
  }

  async getDevice(id: string): Promise<DeviceRecord | null> {
    return this.#devices.get(id);
  }

  async listDevices(sub: string | null): Promise<DeviceRecord[]> {
    return this.#devices.list(sub);
  }

  /** Enrollment: a single-use link becomes a browser device with its own refresh token. */
  async enroll(jti: string, expiresAtMs: number, who: { sub: string; email: string; name: string; platform: string }): Promise<Grant | null> {
    if (!(await this.consumeOnce(`enroll:${jti}`, expiresAtMs))) return null;
    return this.#tokens.grant({ sub: who.sub, email: who.email, kind: "browser", name: who.name, hostname: "", platform: who.platform, arch: "" });
  }

  // --- grants and single-use ids ---

  async listGrants(): Promise<GrantRecord[]> {
    return this.#grants.list();
  }

  /** `expiresAt`: when the grant ends (ms since the epoch, checked by the caller), null for never. */
  async setGrant(email: string, role: GrantRecord["role"], by: string, expiresAt: number | null = null): Promise<GrantRecord | null> {
    const grant = this.#grants.set(email, role, by, expiresAt);
    if (grant?.expiresAt) await this.#arm();
    return grant;
  }

  async removeGrant(email: string): Promise<boolean> {
    return this.#grants.remove(email);
  }

  /** Records a single-use id (enrollment link, WebSocket ticket); false when it was used before. */
  async consumeOnce(id: string, expiresAtMs: number): Promise<boolean> {
    const first = this.#singleUse.consume(id, expiresAtMs);
    await this.#arm();
    return first;
  }

  async storeScopedCode(code: string, token: string, expiresAtMs: number): Promise<void> {
    await this.#singleUse.storeScopedCode(code, token, expiresAtMs);
    await this.#arm();
  }

  async redeemScopedCode(code: string): Promise<string | null> {
    return this.#singleUse.redeemScopedCode(code);
  }
}

// The presence HTTP API through the Worker: shapes, the legacy body, batches, exits, ownership, limits, and bad input.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parsePresenceConfig } from "../../../shared/settings/index.ts";
import { api, as, clock, expectError, fakeOrigin, testEnv, tokenFor, unique } from "./helpers.ts";

let origin: ReturnType<typeof fakeOrigin>;
beforeEach(() => {
  clock.start();
  origin = fakeOrigin();
});
afterEach(() => {
  origin.restore();
  clock.stop();
});

const post = async (id: string, body: unknown, role: "owner" | "member" | "viewer" = "member") => api(`/api/heartbeat/${id}`, await as(role, "POST", body));
const get = async (id: string, role: "owner" | "member" | "viewer" = "member") => api(`/api/heartbeat/${id}`, await as(role, "GET"));
type Heartbeat = { alive: boolean; data: Record<string, unknown> & { timeline: { event: string }[] } };

describe("heartbeat", () => {
  it("accepts the older body shape unchanged and tells the client the TTL and the interval", async () => {
    const id = unique("legacy");
    const started = new Date(Date.now() - 60_000).toISOString();
    const res = await post(id, { pid: 4242, hostname: "laptop.local", startedAt: started });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: "accepted",
      stored: true,
      ttl: 2,
      interval: 1,
      expiresAt: new Date(Date.now() + 2000).toISOString(),
    });
    const { alive, data } = await (await get(id)).json<Heartbeat>();
    expect(alive).toBe(true);
    expect(data).toMatchObject({ id, status: "working", pid: 4242, hostname: "laptop.local", startedAt: started, owner: "member@example.com" });
    expect(data.timeline.map((e) => e.event)).toEqual(["online"]);
  });

  it("takes status, name, meta and epoch-millisecond startedAt; a status change goes on the timeline", async () => {
    const id = unique("full");
    const startedAt = Date.now() - 5000;
    expect((await post(id, { status: "working", name: "refactor", meta: { model: "x", tokens: 1 }, startedAt })).status).toBe(200);
    clock.advance(1000);
    expect((await post(id, { status: "idle" })).status).toBe(200);
    const { data } = await (await get(id)).json<Heartbeat>();
    expect(data).toMatchObject({ status: "idle", name: "refactor", meta: { model: "x", tokens: 1 }, startedAt: new Date(startedAt).toISOString() });
    expect(data.timeline.map((e) => e.event)).toEqual(["online", "idle"]);
  });

  it("an empty body is a plain heartbeat", async () => {
    const id = unique("empty");
    const res = await api(`/api/heartbeat/${id}`, { method: "POST", headers: { authorization: `Bearer ${await tokenFor("member")}` } });
    expect(res.status).toBe(200);
  });

  it("more than one per second for a session is 429 with Retry-After, and changes nothing", async () => {
    const id = unique("fast");
    expect((await post(id, { name: "a" })).status).toBe(200);
    clock.advance(400);
    const res = await post(id, { name: "b" });
    await expectError(res, 429, "RATE_LIMITED");
    expect(res.headers.get("retry-after")).toBe("1");
    expect((await (await get(id)).json<Heartbeat>()).data.name).toBe("a");
    clock.advance(600);
    expect((await post(id, { name: "b" })).status).toBe(200);
  });

  it("a session ended by its process cannot be revived by a late heartbeat (409)", async () => {
    const id = unique("late");
    await post(id, {});
    await api(`/api/heartbeat/${id}`, await as("member", "DELETE"));
    clock.advance(1000);
    await expectError(await post(id, {}), 409, "CONFLICT");
  });
});

describe("batch", () => {
  it("answers per session: accepted, someone else's (403), too fast (429)", async () => {
    const mine = unique("b-mine");
    const theirs = unique("b-theirs");
    const fast = unique("b-fast");
    await post(theirs, {}, "owner");
    await post(fast, {});
    clock.advance(500);
    const res = await api("/api/heartbeat", await as("member", "POST", { sessions: [{ id: mine, pid: 1 }, { id: theirs }, { id: fast }] }));
    expect(res.status).toBe(200);
    const body = await res.json<{ ttl: number; interval: number; sessions: { id: string; status: string; error?: { code: string; retryAfter?: number } }[] }>();
    expect(body).toMatchObject({ ttl: 2, interval: 1 });
    expect(body.sessions.map((s) => [s.id, s.status, s.error?.code])).toEqual([
      [mine, "accepted", undefined],
      [theirs, "rejected", "FORBIDDEN"],
      [fast, "rejected", "RATE_LIMITED"],
    ]);
    expect(body.sessions[2]!.error!.retryAfter).toBe(1);
    expect((await (await get(theirs)).json<Heartbeat>()).data.owner).toBe("owner@example.com");
  });

  it.each([
    ["no sessions", {}],
    ["an empty list", { sessions: [] }],
    ["too many", { sessions: Array.from({ length: 101 }, (_, i) => ({ id: `x${i}` })) }],
    ["an entry that is not an object", { sessions: ["a"] }],
    ["a bad id", { sessions: [{ id: "a/b" }] }],
    ["a missing id", { sessions: [{ pid: 1 }] }],
    ["a duplicate id", { sessions: [{ id: "dup" }, { id: "dup" }] }],
    ["a bad field", { sessions: [{ id: "ok" }, { id: "bad", pid: -1 }] }],
  ])("refuses %s with 400 and changes nothing", async (_name, body) => {
    const before = await (await api("/api/presence", await as("member", "GET"))).json<{ seq: number }>();
    await expectError(await api("/api/heartbeat", await as("member", "POST", body)), 400, "BAD_REQUEST");
    const after = await (await api("/api/presence", await as("member", "GET"))).json<{ seq: number }>();
    expect(after.seq).toBe(before.seq);
  });

  it("names the entry in its message", async () => {
    const err = await expectError(
      await api("/api/heartbeat", await as("member", "POST", { sessions: [{ id: "ok" }, { id: "x", status: "busy" }] })),
      400,
      "BAD_REQUEST",
    );
    expect(err.message).toBe('sessions[1]: "status" must be "working" or "idle".');
  });
});

describe("exit", () => {
  it("DELETE ends the session at once; a non-zero exit code fails it; both with timeline entries", async () => {
    const ok = unique("exit-ok");
    const bad = unique("exit-bad");
    await post(ok, {});
    await post(bad, {});
    const r1 = await api(`/api/heartbeat/${ok}`, await as("member", "DELETE"));
    expect(await r1.json()).toEqual({ status: "removed" });
    const r2 = await api(`/api/heartbeat/${bad}`, await as("member", "DELETE", { exitCode: 3, reason: "crashed" }));
    expect(r2.status).toBe(200);
    const a = await (await get(ok)).json<Heartbeat>();
    const b = await (await get(bad)).json<Heartbeat>();
    expect(a).toMatchObject({ alive: false, data: { status: "ended", exitCode: null } });
    expect(b).toMatchObject({ alive: false, data: { status: "failed", exitCode: 3, reason: "crashed" } });
    expect(b.data.timeline.map((e) => e.event)).toEqual(["online", "failed"]);
    // Again: idempotent.
    expect((await api(`/api/heartbeat/${ok}`, await as("member", "DELETE"))).status).toBe(200);
  });

  it("an unknown session is 404 to DELETE and {alive:false, data:null} to GET", async () => {
    const id = unique("nobody");
    await expectError(await api(`/api/heartbeat/${id}`, await as("member", "DELETE")), 404, "NOT_FOUND");
    const res = await get(id);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ alive: false, data: null });
  });

  it.each([
    [{ exitCode: 1.5 }, '"exitCode" must be an integer.'],
    [{ exitCode: "1" }, '"exitCode" must be an integer.'],
    [{ reason: 7 }, '"reason" must be a string of at most 200 printable characters.'],
    [{ reason: "x".repeat(201) }, '"reason" must be a string of at most 200 printable characters.'],
  ])("refuses %j with 400", async (body, message) => {
    const id = unique("exit-400");
    await post(id, {});
    const err = await expectError(await api(`/api/heartbeat/${id}`, await as("member", "DELETE", body)), 400, "BAD_REQUEST");
    expect(err.message).toBe(message);
    expect((await (await get(id)).json<Heartbeat>()).alive).toBe(true);
  });
});

describe("ownership and roles", () => {
  it("another user's heartbeat or delete is 403 and changes nothing", async () => {
    const id = unique("owned");
    await post(id, { name: "mine" });
    clock.advance(1000);
    await expectError(await post(id, { name: "stolen" }, "owner"), 403, "FORBIDDEN");
    await expectError(await api(`/api/heartbeat/${id}`, await as("owner", "DELETE", { exitCode: 1 })), 403, "FORBIDDEN");
    const { alive, data } = await (await get(id)).json<Heartbeat>();
    expect({ alive, name: data.name, status: data.status, owner: data.owner }).toEqual({
      alive: true,
      name: "mine",
      status: "working",
      owner: "member@example.com",
    });
    // The owner of the session carries on.
    expect((await post(id, { name: "still mine" })).status).toBe(200);
  });

  it("viewers cannot send heartbeats or end sessions, but can read", async () => {
    const id = unique("viewed");
    await post(id, {});
    await expectError(await post(unique("viewer-own"), {}, "viewer"), 403, "FORBIDDEN");
    await expectError(await api(`/api/heartbeat/${id}`, await as("viewer", "DELETE")), 403, "FORBIDDEN");
    await expectError(await api("/api/heartbeat", await as("viewer", "POST", { sessions: [{ id }] })), 403, "FORBIDDEN");
    expect((await get(id, "viewer")).status).toBe(200);
    expect((await api("/api/presence", await as("viewer", "GET"))).status).toBe(200);
  });

  it("everything needs a token", async () => {
    for (const [method, path] of [
      ["POST", "/api/heartbeat/x"],
      ["GET", "/api/heartbeat/x"],
      ["DELETE", "/api/heartbeat/x"],
      ["POST", "/api/heartbeat"],
      ["GET", "/api/presence"],
      ["GET", "/api/presence/ws"],
    ]) {
      await expectError(await api(path!, { method }), 401, "AUTH_REQUIRED");
    }
  });
});

describe("bad input", () => {
  it.each(["a/b", "x".repeat(129), "sp ace", "ümlaut", "semi;colon", "%2e%2e"])("session id %j is 400", async (raw) => {
    const res = await api(`/api/heartbeat/${encodeURIComponent(raw)}`, await as("member", "POST", {}));
    expect(res.status).toBe(400);
  });

  it("accepts every allowed id character", async () => {
    expect((await post("Az09._:-", {})).status).toBe(200);
    expect((await post("x".repeat(128), {})).status).toBe(200);
  });

  it.each([
    [{ pid: -1 }, '"pid" must be a non-negative integer.'],
    [{ pid: 1.5 }, '"pid" must be a non-negative integer.'],
    [{ pid: "12" }, '"pid" must be a non-negative integer.'],
    [{ pid: 2 ** 32 }, '"pid" must be a non-negative integer.'],
    [{ hostname: 5 }, '"hostname" must be a string of at most 255 printable characters.'],
    [{ hostname: "h".repeat(256) }, '"hostname" must be a string of at most 255 printable characters.'],
    [{ hostname: "bad\nhost" }, '"hostname" must be a string of at most 255 printable characters.'],
    [{ name: ["x"] }, '"name" must be a string of at most 200 printable characters.'],
    [{ name: "n".repeat(201) }, '"name" must be a string of at most 200 printable characters.'],
    [{ status: "busy" }, '"status" must be "working" or "idle".'],
    [{ status: 1 }, '"status" must be "working" or "idle".'],
    [{ startedAt: "yesterday" }, '"startedAt" must be an ISO 8601 time or epoch milliseconds, not in the future.'],
    [{ startedAt: "2026-13-45T99:99:99Z" }, '"startedAt" must be an ISO 8601 time or epoch milliseconds, not in the future.'],
    [{ startedAt: 1_700_000_000 }, '"startedAt" must be an ISO 8601 time or epoch milliseconds, not in the future.'],
    [{ startedAt: 1.5e12 + 0.5 }, '"startedAt" must be an ISO 8601 time or epoch milliseconds, not in the future.'],
    [{ startedAt: true }, '"startedAt" must be an ISO 8601 time or epoch milliseconds, not in the future.'],
    [{ meta: "x" }, '"meta" must be a JSON object of at most 8192 bytes.'],
    [{ meta: [1, 2] }, '"meta" must be a JSON object of at most 8192 bytes.'],
    [{ meta: 3 }, '"meta" must be a JSON object of at most 8192 bytes.'],
  ])("refuses %j with a clear 400 and changes nothing", async (body, message) => {
    const id = unique("bad");
    await post(id, { name: "before" });
    clock.advance(1000);
    const err = await expectError(await post(id, { ...body, name: (body as { name?: unknown }).name ?? "after" }), 400, "BAD_REQUEST");
    expect(err.message).toBe(message);
    expect((await (await get(id)).json<Heartbeat>()).data.name).toBe("before");
    // Refused input does not count against the 1/s limit either.
    expect((await post(id, {})).status).toBe(200);
  });

  it("a startedAt in the future is refused", async () => {
    await expectError(await post(unique("future"), { startedAt: Date.now() + 2 * 86_400_000 }), 400, "BAD_REQUEST");
  });

  it("unknown fields are ignored, so newer clients keep working", async () => {
    expect((await post(unique("extra"), { version: "2.0", pid: 1 })).status).toBe(200);
  });

  it("a body that is not a JSON object is refused", async () => {
    await expectError(await post(unique("arr"), "[1,2]"), 400, "BAD_REQUEST");
    await expectError(await post(unique("broken"), "{nope"), 400, "BAD_REQUEST");
    const form = await api(`/api/heartbeat/${unique("form")}`, {
      method: "POST",
      headers: { authorization: `Bearer ${await tokenFor("member")}`, "content-type": "text/plain" },
      body: "pid=1",
    });
    expect(form.status).toBe(415);
  });

  it("a body over 8 KiB is 413, declared or streamed, and changes nothing", async () => {
    const id = unique("big");
    const big = JSON.stringify({ meta: { blob: "x".repeat(8 * 1024) } });
    await expectError(await post(id, big), 413, "PAYLOAD_TOO_LARGE");
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const res = await api(`/api/heartbeat/${id}`, {
      method: "POST",
      headers: { authorization: `Bearer ${await tokenFor("member")}`, "content-type": "application/json" },
      body: stream,
      duplex: "half",
    } as RequestInit);
    await expectError(res, 413, "PAYLOAD_TOO_LARGE");
    expect(await (await get(id)).json()).toEqual({ alive: false, data: null });
    // Just under the cap is fine.
    const fits = JSON.stringify({ meta: { blob: "x".repeat(8 * 1024 - 40) } });
    expect((await post(id, fits)).status).toBe(200);
  });

  it("other methods and sub-paths are answered at the edge, never proxied", async () => {
    const put = await api("/api/heartbeat/x", await as("member", "PUT", {}));
    await expectError(put, 405, "METHOD_NOT_ALLOWED");
    expect(put.headers.get("allow")).toBe("GET, HEAD, POST, DELETE");
    await expectError(await api("/api/presence", await as("member", "POST", {})), 405, "METHOD_NOT_ALLOWED");
    await expectError(await api("/api/heartbeat/a/b", await as("member", "GET")), 404, "NOT_FOUND");
    await expectError(await api("/api/presence/other", await as("member", "GET")), 404, "NOT_FOUND");
    expect(origin.state.deliveries).toHaveLength(0);
  });
});

describe("GET /api/presence", () => {
  it("lists sessions with their status and liveness, and the origin", async () => {
    const a = unique("list-a");
    const b = unique("list-b");
    await post(a, { pid: 1, hostname: "h", name: "one", startedAt: Date.now() - 1000 });
    await post(b, {}, "owner");
    await api(`/api/heartbeat/${b}`, await as("owner", "DELETE"));
    const res = await api("/api/presence", await as("member", "GET"));
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = await res.json<{ seq: number; sessions: Record<string, unknown>[]; origin: { online: boolean; lastSeen: string | null } }>();
    const byId = new Map(body.sessions.map((s) => [s.id, s]));
    expect(Object.keys(byId.get(a)!).sort()).toEqual(
      ["id", "status", "alive", "lastHeartbeat", "expiresAt", "startedAt", "hostname", "pid", "name", "owner", "reason", "exitCode", "endedAt"].sort(),
    );
    expect(byId.get(a)).toMatchObject({ status: "working", alive: true, pid: 1, hostname: "h", name: "one", owner: "member@example.com" });
    expect(byId.get(b)).toMatchObject({ status: "ended", alive: false, expiresAt: null, owner: "owner@example.com" });
    expect(Object.keys(body.origin).sort()).toEqual(["lastSeen", "link", "online", "state"]);
    expect(typeof body.seq).toBe("number");
  });

  it("a session past its TTL shows as not alive even before the alarm has run", async () => {
    const id = unique("stale");
    await post(id, {});
    clock.advance(2000);
    expect((await (await get(id)).json<Heartbeat>()).alive).toBe(false);
  });
});

describe("settings", () => {
  it("defaults to 15 s and 10 s, and refuses an interval that is not below the TTL", () => {
    expect(parsePresenceConfig({})).toEqual({ ok: true, presence: { ttlSeconds: 15, intervalSeconds: 10 } });
    expect(parsePresenceConfig({ HEARTBEAT_TTL_SECONDS: "30", HEARTBEAT_INTERVAL_SECONDS: "20" })).toMatchObject({ ok: true });
    expect(parsePresenceConfig({ HEARTBEAT_TTL_SECONDS: "10", HEARTBEAT_INTERVAL_SECONDS: "10" })).toEqual({
      ok: false,
      problems: [{ setting: "HEARTBEAT_INTERVAL_SECONDS", reason: "must be less than HEARTBEAT_TTL_SECONDS" }],
    });
    for (const bad of ["0", "1", "61", "ten", "-5", "1.5"]) {
      expect(parsePresenceConfig({ HEARTBEAT_TTL_SECONDS: bad })).toMatchObject({ ok: false, problems: [{ setting: "HEARTBEAT_TTL_SECONDS" }] });
    }
  });

  it("/ready names bad presence settings (not their values), and the API answers 503", async () => {
    const broken = { ...testEnv, HEARTBEAT_TTL_SECONDS: "5", HEARTBEAT_INTERVAL_SECONDS: "777777" };
    const ready = await api("/ready", {}, broken);
    expect(ready.status).toBe(503);
    const body = await ready.json<{ checks: { presence: { ok: boolean; problems: string[] } } }>();
    expect(body.checks.presence.ok).toBe(false);
    expect(body.checks.presence.problems.join()).toContain("HEARTBEAT_INTERVAL_SECONDS");
    expect(JSON.stringify(body)).not.toContain("777777");
    await expectError(await api(`/api/heartbeat/${unique("cfg")}`, await as("member", "POST", {}), broken), 503, "CONFIG_INVALID");
    const good = await (await api("/ready", {}, testEnv)).json<{ checks: { presence: { ok: boolean } } }>();
    expect(good.checks.presence).toEqual({ ok: true });
  });
});

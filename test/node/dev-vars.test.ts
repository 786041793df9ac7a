// Unit tests for scripts/dev-vars.ts: filling .dev.vars.example, topping up an old .dev.vars, and port overrides.
import { createPrivateKey, createPublicKey, createHash, sign, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { completeDevVars, fillDevVars, formatValue, GENERATORS, localOverrides, parseDevVars, placeholders } from "../../scripts/dev-vars.ts";
import { WORKER_SETTINGS } from "../../shared/settings/index.ts";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

const EXAMPLE = [
  "# Local settings; <generate:secret> in a comment is left alone.",
  "ORIGIN_URL=http://127.0.0.1:8788",
  "SESSION_SECRET=<generate:secret>",
  'OUTPOST_SIGNING_KEY="<generate:es256-private-jwk>" # ES256 key',
  "export ORIGIN_AUDIENCE='<generate:uuid>'",
  "",
].join("\n");

describe("fillDevVars", () => {
  it("fills the real .dev.vars.example and keeps all its other lines byte for byte", () => {
    const example = read(".dev.vars.example");
    const generated = new Set(placeholders(example).map((p) => p.line - 1));
    const before = example.split("\n");
    const after = fillDevVars(example).split("\n");
    expect(after).toHaveLength(before.length);
    after.forEach((line, i) => {
      if (generated.has(i)) expect(line).not.toContain("<generate:");
      else expect(line).toBe(before[i]);
    });
  });

  it("replaces only whole-value placeholders and keeps every other line", () => {
    const filled = fillDevVars(EXAMPLE);
    const lines = filled.split("\n");
    expect(lines[0]).toBe("# Local settings; <generate:secret> in a comment is left alone.");
    expect(lines[1]).toBe("ORIGIN_URL=http://127.0.0.1:8788");
    expect(lines[3]).toMatch(/ # ES256 key$/);
    expect(lines[4]).toMatch(/^export ORIGIN_AUDIENCE=/);
    expect(lines).toHaveLength(6);
    expect(filled).not.toMatch(/=\s*["']?<generate:/);
  });

  it("writes values that a dotenv parser (and so wrangler) reads back exactly", () => {
    const vars = parseDevVars(fillDevVars(EXAMPLE));
    expect(vars.SESSION_SECRET).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(vars.ORIGIN_AUDIENCE).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const jwk = JSON.parse(vars.OUTPOST_SIGNING_KEY!) as Record<string, string>;
    expect(jwk).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
  });

  it("generates fresh values on every run", () => {
    const a = parseDevVars(fillDevVars(EXAMPLE));
    const b = parseDevVars(fillDevVars(EXAMPLE));
    expect(a.SESSION_SECRET).not.toBe(b.SESSION_SECRET);
    expect(a.OUTPOST_SIGNING_KEY).not.toBe(b.OUTPOST_SIGNING_KEY);
    expect(a.ORIGIN_URL).toBe(b.ORIGIN_URL);
  });

  it("names the line and the known generators when a kind does not exist", () => {
    expect(() => fillDevVars("A=1\nKEY=<generate:rsa-4096>\n")).toThrow(/line 2: KEY asks for <generate:rsa-4096>.*known: secret, uuid, es256-private-jwk/);
  });

  it("takes extra generators, so a new kind of secret is one entry", () => {
    expect(fillDevVars("TOKEN=<generate:fixed>\n", { fixed: () => "abc" })).toBe("TOKEN=abc\n");
  });

  it("keeps CRLF line endings", () => {
    expect(fillDevVars("A=1\r\nB=<generate:x>\r\n", { x: () => "v" })).toBe("A=1\r\nB=v\r\n");
  });
});

describe("generators", () => {
  it("es256-private-jwk is a usable P-256 signing key whose kid is its RFC 7638 thumbprint", () => {
    const jwk = JSON.parse(GENERATORS["es256-private-jwk"]!()) as Record<string, string>;
    const key = createPrivateKey({ key: jwk, format: "jwk" });
    expect(key.asymmetricKeyType).toBe("ec");
    expect(key.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    const data = Buffer.from("outpost");
    const signature = sign("sha256", data, { key, dsaEncoding: "ieee-p1363" });
    expect(verify("sha256", data, { key: createPublicKey(key), dsaEncoding: "ieee-p1363" }, signature)).toBe(true);
    const thumbprint = createHash("sha256")
      .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
      .digest("base64url");
    expect(jwk.kid).toBe(thumbprint);
  });

  it("formatValue quotes only what needs quoting", () => {
    expect(formatValue("abc-_.:/+=@1")).toBe("abc-_.:/+=@1");
    expect(formatValue('{"a":1}')).toBe(`'{"a":1}'`);
    expect(formatValue("it's")).toBe(`"it's"`);
    expect(() => formatValue(`'"`)).toThrow();
  });
});

describe("placeholders", () => {
  it("lists generated settings with their kind and line", () => {
    expect(placeholders(EXAMPLE)).toEqual([
      { name: "SESSION_SECRET", kind: "secret", line: 3 },
      { name: "OUTPOST_SIGNING_KEY", kind: "es256-private-jwk", line: 4 },
      { name: "ORIGIN_AUDIENCE", kind: "uuid", line: 5 },
    ]);
  });
});

describe("completeDevVars", () => {
  it("leaves an up-to-date file alone", () => {
    const existing = fillDevVars(EXAMPLE);
    expect(completeDevVars(EXAMPLE, existing)).toEqual({ text: existing, added: [], missing: [] });
  });

  it("appends newly added generated settings and never changes existing lines", () => {
    const existing = "ORIGIN_URL=https://origin.example.com\nSESSION_SECRET=mine";
    const result = completeDevVars(EXAMPLE, existing);
    expect(result.added).toEqual(["OUTPOST_SIGNING_KEY", "ORIGIN_AUDIENCE"]);
    expect(result.missing).toEqual([]);
    expect(result.text.startsWith(`${existing}\n`)).toBe(true);
    const vars = parseDevVars(result.text);
    expect(vars.ORIGIN_URL).toBe("https://origin.example.com");
    expect(vars.SESSION_SECRET).toBe("mine");
    expect(JSON.parse(vars.OUTPOST_SIGNING_KEY!)).toMatchObject({ kty: "EC" });
  });

  it("reports plain settings the file lacks instead of inventing them", () => {
    const result = completeDevVars("A=1\nB=2\n", "A=5\n");
    expect(result).toEqual({ text: "A=5\n", added: [], missing: ["B"] });
  });
});

describe("localOverrides", () => {
  const defaults = { defaultEdgePort: 8787, defaultOriginPort: 8788 };
  const example = parseDevVars(read(".dev.vars.example"));

  it("overrides nothing on the default ports", () => {
    expect(localOverrides(example, { ...defaults, edgePort: 8787, originPort: 8788 })).toEqual({});
  });

  it("points the Worker at the origin's port and moves the local PUBLIC_URL with the edge", () => {
    expect(localOverrides(example, { ...defaults, edgePort: 9000, originPort: 9001 })).toEqual({
      ORIGIN_URL: "http://127.0.0.1:9001",
      PUBLIC_URL: "http://localhost:9000",
    });
  });

  it("keeps a PUBLIC_URL that was set on purpose", () => {
    const vars = { PUBLIC_URL: "https://outpost.example.com" };
    expect(localOverrides(vars, { ...defaults, edgePort: 9000, originPort: 8788 })).toEqual({});
  });
});

describe(".dev.vars.example", () => {
  const example = parseDevVars(read(".dev.vars.example"));

  it("has the local stack's values", () => {
    expect(example.ORIGIN_URL).toBe("http://127.0.0.1:8788");
    expect(example.PUBLIC_URL).toBe("http://localhost:8787");
  });

  it("lists every setting shared/settings declares for the Worker, and docs/configuration.md does too", () => {
    const docs = read("docs/configuration.md");
    expect(WORKER_SETTINGS.length).toBeGreaterThan(0);
    for (const { name } of WORKER_SETTINGS) {
      expect(Object.keys(example), `${name} in .dev.vars.example`).toContain(name);
      expect(docs, `${name} in docs/configuration.md`).toContain(`\`${name}\``);
    }
  });
});

// The settings' declarations and what is generated from them: a test fails when a committed file has drifted.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { USAGE } from "../../origin/config.ts";
import { GENERATORS } from "../../scripts/dev-vars.ts";
import { GENERATED } from "../../scripts/settings-docs.ts";
import { defaultOf, GENERATOR_KINDS, ORIGIN_OPTION_LIST, originFlag, WORKER_SETTINGS } from "../../shared/settings/index.ts";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

describe("generated files", () => {
  it.each(Object.entries(GENERATED))("%s is what `npm run settings:docs` writes", (path, render) => {
    expect(read(path) === render(), `${path} is out of date: run \`npm run settings:docs\` (then \`npm run types\`)`).toBe(true);
  });

  it("the Worker's Env type declares every Worker setting (`npm run types` after .dev.vars.example changes)", () => {
    const types = read("worker/worker-configuration.d.ts");
    const env = types.slice(types.indexOf("interface __BaseEnv_Env {"), types.indexOf("}", types.indexOf("interface __BaseEnv_Env {")));
    for (const { name } of WORKER_SETTINGS) expect(env, name).toContain(`\t${name}: string;`);
  });
});

describe("wrangler.toml", () => {
  it("sets only declared Worker settings in [vars], each empty or valid", () => {
    const toml = read("wrangler.toml");
    const vars = toml.slice(toml.indexOf("[vars]"), toml.indexOf("\n[", toml.indexOf("[vars]") + 1));
    const entries = [...vars.matchAll(/^([A-Z0-9_]+) = "(.*)"$/gm)].map((m) => [m[1]!, m[2]!] as const);
    expect(entries.length).toBeGreaterThan(0);
    for (const [name, value] of entries) {
      const declared = WORKER_SETTINGS.find((s) => s.name === name);
      expect(declared, `${name} is not a declared setting`).toBeDefined();
      if (value !== "" && declared) expect(declared.type.parse(value).ok, `${name}'s value`).toBe(true);
    }
  });
});

describe("declarations", () => {
  it("name each Worker setting once", () => {
    const names = WORKER_SETTINGS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it("have valid defaults and examples, and only generators that exist", () => {
    for (const s of WORKER_SETTINGS) {
      if (s.default !== undefined) expect(() => defaultOf(s)).not.toThrow();
      if (s.example !== undefined) expect(s.type.parse(s.example).ok, `${s.name}'s example`).toBe(true);
      if (s.generate) expect(Object.keys(GENERATORS)).toContain(s.generate);
    }
    for (const o of ORIGIN_OPTION_LIST) {
      if (o.default !== undefined) expect(o.type.parse(o.default).ok, `--${o.flag}'s default`).toBe(true);
    }
    expect(Object.keys(GENERATORS)).toEqual([...GENERATOR_KINDS]);
  });

  it("give the origin one flag each, all of them in its usage text", () => {
    const flags = ORIGIN_OPTION_LIST.map((o) => o.flag);
    expect(new Set(flags).size).toBe(flags.length);
    for (const o of ORIGIN_OPTION_LIST) expect(USAGE).toContain(originFlag(o));
  });
});

// The `outpost` command: sign in, keep agent sessions live at the edge, inspect presence, set up the tunnel and origin.
import { cac } from "cac";
import { registerAuth } from "./commands/auth.ts";
import { registerDevices } from "./commands/devices.ts";
import { registerDoctor } from "./commands/doctor.ts";
import { registerOrigin } from "./commands/origin.ts";
import { registerPresence } from "./commands/presence.ts";
import { registerRun } from "./commands/run.ts";
import { registerTunnel } from "./commands/tunnel.ts";
import { allowPlainHttp } from "./lib/config.ts";
import { EXIT, toCliError, usageError } from "./lib/errors.ts";
import { out } from "./lib/output.ts";
import { VERSION } from "./lib/version.ts";
import { ORIGIN_OPTIONS } from "../shared/settings/index.ts";

/** OUTPOST_INSECURE, read by the origin's declared rule (`1`/`true`, `0`/`false`) for the CLI's URLs too. */
function insecureFromEnv(): boolean {
  const raw = process.env.OUTPOST_INSECURE?.trim();
  if (!raw) return false;
  const parsed = ORIGIN_OPTIONS.insecure.type.parse(raw);
  if (!parsed.ok) throw usageError(`OUTPOST_INSECURE ${parsed.reason}`);
  return parsed.value;
}

export async function main(argv: string[]): Promise<void> {
  const cli = cac("outpost");
  registerAuth(cli);
  registerDevices(cli);
  registerRun(cli);
  registerPresence(cli);
  registerTunnel(cli);
  registerOrigin(cli);
  registerDoctor(cli);
  cli.option("--insecure", "Allow plain http:// to an edge that is not loopback (--url, OUTPOST_URL, and origin's --edge)");
  cli.usage("<command> [options]");
  cli.example("  $ outpost login --url https://outpost.example.com");
  cli.example("  $ outpost run -- npm run agent");
  cli.example("  $ outpost sessions --watch");
  cli.example("  $ outpost doctor");
  cli.help((sections) => {
    sections.push({
      title: "Environment",
      body: [
        "  OUTPOST_URL     The edge URL (after --url, before the stored one)",
        "  OUTPOST_TOKEN   An access token to use instead of the stored credentials (CI, headless)",
        "  OUTPOST_INSECURE 1 (or true): as --insecure",
        "  XDG_CONFIG_HOME Credentials live in $XDG_CONFIG_HOME/outpost/credentials.json (default ~/.config)",
        "  NO_COLOR        Disable colour",
        "  OUTPOST_DEBUG   Log each request (never tokens) to stderr",
      ].join("\n"),
    });
    sections.push({
      title: "Exit codes",
      body: "  0 ok, 1 failed check, 2 usage, 3 configuration, 4 authentication, 5 edge unreachable, 6 edge error, 130 interrupted\n  `outpost run` exits with its command's code (128+N when killed by signal N). See docs/cli.md.",
    });
  });
  cli.version(VERSION);

  try {
    cli.parse(["node", "outpost", ...argv], { run: false });
    if (cli.options.help || cli.options.version) return;
    if (cli.options.insecure === true || insecureFromEnv()) allowPlainHttp();
    if (!cli.matchedCommand) {
      if (cli.args.length === 0) {
        cli.outputHelp();
        return;
      }
      throw usageError(`unknown command ${JSON.stringify(String(cli.args[0]))}`);
    }
    await cli.runMatchedCommand();
  } catch (err) {
    const error = toCliError(err);
    if (process.env.OUTPOST_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    out.error(error);
    process.exitCode = error.exitCode;
  }
}

// The bundle's entry point: cli/dist/outpost.mjs runs main() with the process arguments.
await main(process.argv.slice(2));
if (process.exitCode === undefined) process.exitCode = EXIT.OK;

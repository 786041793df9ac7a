// Errors the CLI reports: one line, a hint, and a documented exit code (docs/cli.md, "Exit codes").

/** Every exit code the CLI itself uses. `outpost run` exits with its child's code instead once the child has started. */
export const EXIT = {
  OK: 0,
  /** A check failed (doctor, tunnel check) or the thing asked for does not exist. */
  FAILURE: 1,
  /** Bad usage: unknown command or option, missing or malformed argument (URL, session id, device id). */
  USAGE: 2,
  /** Local configuration: no edge URL, corrupt credentials file, unreadable or invalid key or config file. */
  CONFIG: 3,
  /** Authentication: not signed in, session expired or revoked, login denied or expired, not allowed. */
  AUTH: 4,
  /** The edge could not be reached (DNS, refused connection, timeout). */
  UNREACHABLE: 5,
  /** The edge answered with an error the CLI cannot act on (5xx, unexpected 4xx, malformed answer). */
  EDGE: 6,
  /** Interrupted by Ctrl-C (128 + SIGINT). */
  INTERRUPTED: 130,
} as const;

export class CliError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;
  /** The edge's error code, when the edge produced the error. */
  readonly code: string | undefined;

  constructor(exitCode: number, message: string, options: { hint?: string; code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CliError";
    this.exitCode = exitCode;
    this.hint = options.hint;
    this.code = options.code;
  }
}

export const usageError = (message: string, hint = "Run `outpost --help` for usage.") => new CliError(EXIT.USAGE, message, { hint });
export const configError = (message: string, hint?: string) => new CliError(EXIT.CONFIG, message, { hint });
export const authError = (message: string, hint = "Run `outpost login`.", code?: string) => new CliError(EXIT.AUTH, message, { hint, code });

/** Any thrown value as a CliError: unknown errors are reported as failures with their message only. */
export function toCliError(err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof Error && err.name === "CACError") return usageError(firstLine(err.message));
  const message = err instanceof Error ? err.message : String(err);
  return new CliError(EXIT.FAILURE, firstLine(message) || "unexpected error", { hint: "Set OUTPOST_DEBUG=1 for details." });
}

function firstLine(text: string): string {
  return text.split("\n")[0]!.trim();
}

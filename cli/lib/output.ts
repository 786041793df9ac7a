// Terminal output: colour only on a TTY without NO_COLOR, a spinner only on a TTY, tables, JSON, one-line errors.
import type { CliError } from "./errors.ts";

type Stream = NodeJS.WriteStream;

function colourAllowed(stream: Stream): boolean {
  if ("NO_COLOR" in process.env && process.env.NO_COLOR !== "") return false;
  if (process.env.TERM === "dumb") return false;
  return stream.isTTY === true;
}

const wrap = (open: number, close: number) => (enabled: boolean, text: string) => (enabled ? `\x1b[${open}m${text}\x1b[${close}m` : text);
const styles = {
  bold: wrap(1, 22),
  dim: wrap(2, 22),
  red: wrap(31, 39),
  green: wrap(32, 39),
  yellow: wrap(33, 39),
  cyan: wrap(36, 39),
};
type Style = keyof typeof styles;

export interface Painter {
  (style: Style, text: string): string;
  enabled: boolean;
}

function painter(stream: Stream): Painter {
  const enabled = colourAllowed(stream);
  const paint = ((style: Style, text: string) => styles[style](enabled, text)) as Painter;
  paint.enabled = enabled;
  return paint;
}

export const out = {
  get tty(): boolean {
    return process.stdout.isTTY === true;
  },
  paint: painter(process.stdout),
  err: painter(process.stderr),
  line(text = ""): void {
    process.stdout.write(`${text}\n`);
  },
  json(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  },
  /** Notes and progress go to stderr, so stdout stays parseable. */
  note(text: string): void {
    process.stderr.write(`${text}\n`);
  },
  warn(text: string): void {
    process.stderr.write(`${out.err("yellow", "outpost:")} ${text}\n`);
  },
  error(err: CliError): void {
    const hint = err.hint ? ` ${out.err("dim", `(${err.hint})`)}` : "";
    process.stderr.write(`${out.err("red", "outpost: error:")} ${err.message}${hint}\n`);
  },
};

export interface Spinner {
  text(text: string): void;
  stop(finalLine?: string): void;
}

/** A spinner on stderr when it is a TTY; elsewhere only the first text and the final line are printed. */
export function spinner(initial: string): Spinner {
  const tty = process.stderr.isTTY === true && process.env.TERM !== "dumb";
  let current = initial;
  if (!tty) {
    process.stderr.write(`${initial}\n`);
    return {
      text(text) {
        current = text;
      },
      stop(finalLine) {
        if (finalLine) process.stderr.write(`${finalLine}\n`);
      },
    };
  }
  const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  let i = 0;
  const render = () => process.stderr.write(`\r\x1b[K${out.err("cyan", frames[i++ % frames.length]!)} ${current}`);
  render();
  const timer = setInterval(render, 80);
  return {
    text(text) {
      current = text;
    },
    stop(finalLine) {
      clearInterval(timer);
      process.stderr.write("\r\x1b[K");
      if (finalLine) process.stderr.write(`${finalLine}\n`);
    },
  };
}

/** Left-aligned columns separated by two spaces; the header is bold on a colour terminal. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [out.paint("bold", fmt(headers)), ...rows.map(fmt)].join("\n");
}

/** "12s ago", "5m ago", "3h ago", "2d ago" (or "in 4m" for the future). */
export function relativeTime(ms: number, now = Date.now()): string {
  const delta = Math.round((now - ms) / 1000);
  const abs = Math.abs(delta);
  const text = abs < 60 ? `${abs}s` : abs < 3600 ? `${Math.round(abs / 60)}m` : abs < 86_400 ? `${Math.round(abs / 3600)}h` : `${Math.round(abs / 86_400)}d`;
  return delta >= 0 ? `${text} ago` : `in ${text}`;
}

// A tiny Redis client over node:net (RESP2): pipelined commands answered in order, and pub/sub pushes. Bench use only.
import net from "node:net";

export type RespValue = string | number | null | RespValue[] | RespError;

class RespError extends Error {}

interface Pending {
  resolve(value: RespValue): void;
  reject(err: Error): void;
}

/** Parses one value from `buf` at `pos`; returns null when the buffer does not hold a whole value yet. */
function parse(buf: Buffer, pos: number): { value: RespValue; next: number } | null {
  if (pos >= buf.length) return null;
  const lineEnd = buf.indexOf("\r\n", pos);
  if (lineEnd === -1) return null;
  const type = String.fromCharCode(buf[pos]!);
  const line = buf.toString("utf8", pos + 1, lineEnd);
  const after = lineEnd + 2;
  switch (type) {
    case "+":
      return { value: line, next: after };
    case "-":
      return { value: new RespError(line), next: after };
    case ":":
      return { value: Number(line), next: after };
    case "$": {
      const len = Number(line);
      if (len === -1) return { value: null, next: after };
      if (buf.length < after + len + 2) return null;
      return { value: buf.toString("utf8", after, after + len), next: after + len + 2 };
    }
    case "*": {
      const count = Number(line);
      if (count === -1) return { value: null, next: after };
      const items: RespValue[] = [];
      let next = after;
      for (let i = 0; i < count; i++) {
        const item = parse(buf, next);
        if (!item) return null;
        items.push(item.value);
        next = item.next;
      }
      return { value: items, next };
    }
    default:
      throw new Error(`RESP: unexpected type byte ${JSON.stringify(type)}`);
  }
}

function encode(args: (string | number)[]): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) {
    const s = String(arg);
    out += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  }
  return out;
}

export class RespClient {
  readonly #socket: net.Socket;
  readonly #pending: Pending[] = [];
  #buffer: Buffer = Buffer.alloc(0);
  #subscribed = false;
  /** Called with each pub/sub message: [kind, channel, payload] (or pmessage's 4 parts). */
  onPush: ((message: RespValue[]) => void) | null = null;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("close", () => {
      for (const p of this.#pending.splice(0)) p.reject(new Error("redis connection closed"));
    });
    socket.on("error", () => {
      // "close" follows and rejects whatever is pending.
    });
  }

  static connect(port: number, host = "127.0.0.1"): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      socket.once("connect", () => resolve(new RespClient(socket)));
      socket.once("error", reject);
    });
  }

  /** Sends one command; replies arrive in order, so many commands may be in flight (pipelining). */
  command(...args: (string | number)[]): Promise<RespValue> {
    if (args[0] !== undefined && /^p?subscribe$/i.test(String(args[0]))) this.#subscribed = true;
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#socket.write(encode(args));
    });
  }

  /** Sends many commands in one write and resolves with all their replies. */
  pipeline(commands: (string | number)[][]): Promise<RespValue[]> {
    const replies = commands.map(() => new Promise<RespValue>((resolve, reject) => this.#pending.push({ resolve, reject })));
    this.#socket.write(commands.map(encode).join(""));
    return Promise.all(replies);
  }

  close(): void {
    this.#socket.end();
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let pos = 0;
    for (;;) {
      const parsed = parse(this.#buffer, pos);
      if (!parsed) break;
      pos = parsed.next;
      this.#deliver(parsed.value);
    }
    this.#buffer = pos === this.#buffer.length ? Buffer.alloc(0) : this.#buffer.subarray(pos);
  }

  #deliver(value: RespValue): void {
    if (this.#subscribed && Array.isArray(value) && (value[0] === "message" || value[0] === "pmessage")) {
      this.onPush?.(value);
      return;
    }
    const pending = this.#pending.shift();
    if (!pending) return;
    if (value instanceof RespError) pending.reject(value);
    else pending.resolve(value);
  }
}

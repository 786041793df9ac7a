// A recording relay between the edge and a real origin: passes every request on unchanged and notes each event delivery.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { EVENTS_PATH, type BatchResult } from "../../shared/events.ts";

/** One POST /outpost/events the edge made, and how the origin answered it. */
interface Delivery {
  /** The event ids in the batch, in the order sent. */
  ids: string[];
  seqs: number[];
  /** The origin's status; 0 when the origin could not be reached (the relay then reset the edge's connection). */
  status: number;
  /** The origin's own count of ids it had seen before (it stores each id once). */
  duplicates: number;
  at: number;
}

export interface Relay {
  url: string;
  deliveries: Delivery[];
  /** How many times each event id was acknowledged (a 2xx delivery that carried it). */
  acknowledged(): Map<string, number>;
  close(): Promise<void>;
}

/**
 * Listens on a free loopback port and forwards to `target` (an origin URL). While the origin is down the edge's
 * connection is reset, as if nothing listened: a refused origin and a refused relay look the same to the edge.
 */
export async function startRelay(target: string): Promise<Relay> {
  const to = new URL(target);
  const deliveries: Delivery[] = [];
  const server = http.createServer({ requestTimeout: 0 }, (req, res) => {
    const recording = req.method === "POST" && req.url === EVENTS_PATH;
    /** The batch this request carries, once its body is in. */
    let batch: Pick<Delivery, "ids" | "seqs"> | null = null;
    const up = http.request({ hostname: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, upRes.rawHeaders);
      if (!recording) {
        upRes.pipe(res);
        upRes.on("error", () => res.destroy());
        return;
      }
      const chunks: Buffer[] = [];
      upRes.on("data", (chunk: Buffer) => chunks.push(chunk));
      upRes.on("error", () => res.destroy());
      upRes.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let duplicates = 0;
        try {
          duplicates = (JSON.parse(text) as BatchResult).duplicates ?? 0;
        } catch {
          // An error answer: not a batch result.
        }
        if (batch) deliveries.push({ ...batch, status: upRes.statusCode ?? 0, duplicates, at: Date.now() });
        res.end(Buffer.concat(chunks));
      });
    });
    up.on("error", () => {
      if (batch) deliveries.push({ ...batch, status: 0, duplicates: 0, at: Date.now() });
      req.socket.destroy();
    });
    if (!recording) {
      req.pipe(up);
      return;
    }
    const body: Buffer[] = [];
    req.on("data", (chunk: Buffer) => body.push(chunk));
    req.on("end", () => {
      const bytes = Buffer.concat(body);
      const events = (JSON.parse(bytes.toString("utf8")) as { events: { id: string; seq: number }[] }).events;
      batch = { ids: events.map((e) => e.id), seqs: events.map((e) => e.seq) };
      up.end(bytes);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    deliveries,
    acknowledged() {
      const counts = new Map<string, number>();
      for (const d of deliveries) if (d.status >= 200 && d.status < 300) for (const id of d.ids) counts.set(id, (counts.get(id) ?? 0) + 1);
      return counts;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

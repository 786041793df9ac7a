// A stand-in for Supabase Auth's JWKS endpoint on loopback, serving keys the tests generate, counting fetches.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { JWK } from "jose";

export interface JwksServer {
  /** What SUPABASE_URL would be: the JWKS lives at `${url}/auth/v1/.well-known/jwks.json`. */
  url: string;
  fetches(): number;
  setKeys(keys: JWK[]): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  let current = keys;
  let count = 0;
  const server = createServer((req, res) => {
    if (req.url === "/auth/v1/.well-known/jwks.json") {
      count++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: current }));
    } else if (req.url === "/__fetches") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ count }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    fetches: () => count,
    setKeys: (next) => {
      current = next;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

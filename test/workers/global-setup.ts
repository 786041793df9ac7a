// Starts a real origin (child process) and a Supabase-like JWKS server on loopback for the Worker tests.
/// <reference path="./provided.d.ts" />
import type { JWK } from "jose";
import type { TestProject } from "vitest/node";
import { startJwksServer } from "../support/jwks-server.ts";
import { es256KeyPair, rs256KeyPair } from "../support/keys.ts";
import { spawnOrigin, trustEdgeEnv } from "../support/spawn-origin.ts";

export default async function setup(project: TestProject) {
  // The origin enforces assertions: it trusts the keys vitest.config.ts gave the Worker, and its PUBLIC_URL as issuer.
  const keys = [process.env.OUTPOST_TEST_SIGNING_KEY, process.env.OUTPOST_TEST_PREVIOUS_SIGNING_KEY].map((k) => JSON.parse(k!) as JWK);
  const origin = await spawnOrigin([], trustEdgeEnv({ keys, issuer: "https://outpost.example.com", audience: "origin" }));
  const es = await es256KeyPair("sb-es-1");
  const rs = await rs256KeyPair("sb-rs-1");
  const stranger = await es256KeyPair("sb-es-1");
  const jwks = await startJwksServer([es.publicJwk, rs.publicJwk]);
  project.provide("originUrl", origin.url);
  project.provide("supabaseUrl", jwks.url);
  project.provide("supabaseEs256", es.privateJwk);
  project.provide("supabaseRs256", rs.privateJwk);
  project.provide("strangerEs256", stranger.privateJwk);
  return async () => {
    await jwks.close();
    await origin.stop();
  };
}

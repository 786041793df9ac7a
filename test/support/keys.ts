// Generates real ES256 keys as JWKs for tests and local development (never committed).
import { exportJWK, generateKeyPair, type JWK } from "jose";

export interface KeyPairJwk {
  privateJwk: JWK & { kid: string };
  publicJwk: JWK & { kid: string };
}

export async function es256KeyPair(kid: string): Promise<KeyPairJwk> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: "ES256" };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
  return { privateJwk, publicJwk };
}

export async function rs256KeyPair(kid: string): Promise<KeyPairJwk> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true, modulusLength: 2048 });
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: "RS256" };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  return { privateJwk, publicJwk };
}

// What test/workers/global-setup.ts provides to the Worker tests.
import type { JWK } from "jose";

declare module "vitest" {
  export interface ProvidedContext {
    originUrl: string;
    /** SUPABASE_URL of a JWKS server on loopback; GET `${supabaseUrl}/__fetches` counts JWKS fetches. */
    supabaseUrl: string;
    supabaseEs256: JWK & { kid: string };
    supabaseRs256: JWK & { kid: string };
    /** A key the JWKS server does not publish. */
    strangerEs256: JWK & { kid: string };
  }
}

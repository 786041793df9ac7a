// BENCH ONLY, never deployed: worker/auth/assertion.ts without the ES256 signature, to show what signing the
// per-request assertion costs. The bench origin accepts any assertion (bench/origin-host.ts).
export { ASSERTION_HEADER } from "../../worker/auth/assertion.ts";

export async function mintAssertion() {
  return "bench.unsigned.assertion";
}

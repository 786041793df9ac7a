// A do-nothing module Worker for benchmarks: answers every request with a fixed small JSON body, no subrequest.
const BODY = JSON.stringify({ ok: true, worker: "noop" });

export default {
  fetch(): Response {
    return new Response(BODY, { headers: { "content-type": "application/json" } });
  },
};

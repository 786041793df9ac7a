// A plain pass-through module Worker for benchmarks: fetch(ORIGIN_URL + path + query) and return the response as is.
interface PassthroughEnv {
  ORIGIN_URL: string;
}

export default {
  fetch(request: Request, env: PassthroughEnv): Promise<Response> {
    const url = new URL(request.url);
    return fetch(env.ORIGIN_URL + url.pathname + url.search);
  },
};

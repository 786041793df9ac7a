// The layers point one way: web/, cli/, origin/ -> shared/; worker/ -> durable-objects/ -> shared/ (run: npm run deps).
// Without swc, dependency-cruiser skips most TypeScript and still passes: fail loudly instead.
require.resolve("@swc/core");

/** @type {import("dependency-cruiser").IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "A cycle makes load order matter. Type-only imports and lazy import() back to a runner are erased or deferred, so they do not count.",
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only", "dynamic-import"] } },
    },
    {
      name: "shared-is-a-leaf",
      severity: "error",
      comment: "shared/ holds the wire definitions every side uses, so it imports nothing of the project outside itself.",
      from: { path: "^shared/" },
      to: { dependencyTypes: ["local"], pathNot: "^shared/" },
    },
    {
      name: "durable-objects-below-worker",
      severity: "error",
      comment: "The Worker uses the Durable Objects, never the reverse: what both need lives in shared/ or durable-objects/.",
      from: { path: "^durable-objects/" },
      to: { path: "^worker/" },
    },
    {
      name: "edge-not-node-side",
      severity: "error",
      comment: "The Worker and the Durable Objects run in workerd: nothing of the origin, the CLI or the web app belongs there.",
      from: { path: "^(worker|durable-objects)/" },
      to: { path: "^(origin|cli|web)/" },
    },
    {
      name: "web-only-shared",
      severity: "error",
      comment: "The web app talks to the edge over HTTP: it shares wire types through shared/, not code of the other sides.",
      from: { path: "^web/" },
      to: { path: "^(worker|durable-objects|origin|cli)/" },
    },
    {
      name: "node-side-not-edge",
      severity: "error",
      comment: "The CLI and the origin reach the edge over the network: wire definitions come from shared/.",
      from: { path: "^(cli|origin)/" },
      to: { path: "^(worker|durable-objects|web)/" },
    },
  ],
  options: {
    // TypeScript 7 has no JavaScript compiler API, which dependency-cruiser's TypeScript parser needs: swc parses instead.
    // swc keeps type-only imports (marked "type-only"), so a type from worker/ in durable-objects/ counts like a value.
    parser: "swc",
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|dist|web/dist|cli/dist|\\.wrangler|test-output)/|worker/worker-configuration\\.d\\.ts$" },
    enhancedResolveOptions: {
      extensions: [".ts", ".tsx", ".js", ".mjs", ".json"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types"],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};

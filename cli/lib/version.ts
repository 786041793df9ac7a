// The CLI's version, from the package manifest (inlined by the bundler).
import pkg from "../../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
export const USER_AGENT = `outpost-cli/${VERSION} node/${process.versions.node} ${process.platform}-${process.arch}`;

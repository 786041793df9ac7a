// TEMPORARY, for durable-objects/ only until its imports point at shared/settings/ (drop at merge).
export * from "../shared/settings/index.ts";

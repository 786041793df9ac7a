// Starts a real origin on loopback (as a child process) for the Worker tests and tells them where it is.
/// <reference path="./provided.d.ts" />
import type { TestProject } from "vitest/node";
import { spawnOrigin } from "../support/spawn-origin.ts";

export default async function setup(project: TestProject) {
  const origin = await spawnOrigin();
  project.provide("originUrl", origin.url);
  return () => origin.stop();
}

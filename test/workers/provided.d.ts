// What test/workers/global-setup.ts provides to the Worker tests.
declare module "vitest" {
  export interface ProvidedContext {
    originUrl: string;
  }
}
export {};

// Builds the phone web app into web/dist, which the Worker serves as static assets.
import { defineConfig } from "vite";

export default defineConfig({
  root: import.meta.dirname,
  build: { outDir: "dist", emptyOutDir: true, assetsDir: "assets" },
  server: { port: 5173, proxy: { "/api": "http://localhost:8787", "/health": "http://localhost:8787" } },
});

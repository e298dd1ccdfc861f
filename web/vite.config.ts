// Vite builds the app into dist/, which the backend serves at / (backend/api/web.py).
// `npm run dev` proxies the API to a backend on 127.0.0.1:8000 (`make up`).
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

const backend = "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
  server: {
    host: "127.0.0.1",
    proxy: { "/api": backend, "/ipfs": backend },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});

// Vite 8 with the Vue plugin and nothing for mau-beacon: no optimizeDeps, no wasm plugin.
import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";

export default defineConfig({ plugins: [vue()], logLevel: "warn" });

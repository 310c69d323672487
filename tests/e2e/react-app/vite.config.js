// Vite needs no settings for a production build (see ../vite-app/vite.config.js).
import { defineConfig } from "vite";

export default defineConfig({});

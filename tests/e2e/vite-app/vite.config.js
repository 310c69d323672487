// A production build needs no settings:
// - `@twilio/conversations` and its @twilio/* dependencies are picked through their
//   `browser` field (CJS), which Vite converts; their browser builds inline their own
//   copy of Node's `events` and guard every use of `global`, so no polyfill or `define`.
// - mau-beacon resolves through its `exports`, and Vite emits the .wasm that its module
//   loads with `new URL("mau_beacon_bg.wasm", import.meta.url)` as a hashed asset.
import { defineConfig } from "vite";

export default defineConfig({});

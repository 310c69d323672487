// The wasm inlined: raw DEFLATE (level 9), then base64 (scripts/build.sh). The package entry
// imports this module only with `import()`, when the wasm's URL does not answer with a
// WebAssembly module, so bundlers make it a chunk of its own that a page fetches only then;
// the script-tag build carries it inside.
//
// The browser's DecompressionStream inflates it (Chrome 80, Firefox 113, Safari 16.4).
import packed from "../pkg/web/mau_beacon_inline.js";

/** The wasm as a `Response`, so it compiles while it inflates. */
export function unpack() {
  const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
  const wasm = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Response(wasm, { headers: { "content-type": "application/wasm" } });
}

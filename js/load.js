// Loading the wasm, once per page, without ever rejecting. By default (or given a URL) the
// package's own .wasm is fetched; when the answer is not a WebAssembly module (a 404, the
// index.html of a single-page-app server, a blocked request) the copy inlined in
// js/inline.js is fetched instead, as a chunk of its own. `wasmSource` says which one ran.
import init from "../pkg/web/mau_beacon.js";

let loading;

export function failure(code, message, cause) {
  const error = new Error(message);
  error.name = "MauBeaconError";
  error.code = code;
  error.cause = cause;
  return error;
}

/** The bytes at `url`; rejects saying why when they are not a WebAssembly module. */
function fetchWasm(url) {
  const why = (what) => new Error(`${url} answered ${what}`);
  return fetch(url).then((response) => {
    if (!response.ok) throw why(`HTTP ${response.status}`);
    const type = response.headers.get("content-type") || "no content-type";
    return response.arrayBuffer().then((bytes) => {
      // "\0asm": every WebAssembly module starts with it.
      if (new Uint8Array(bytes, 0, Math.min(4, bytes.byteLength)).join() === "0,97,115,109") return bytes;
      throw why(/html/i.test(type) ? "with HTML (a single-page-app fallback?), not wasm" : `with ${type}, not wasm`);
    });
  }, (e) => {
    throw why(`nothing (${e})`);
  });
}

/** The warning's last sentence: the cause behind the browser's words, and what fixes it. */
function likelyCause(text) {
  const status = /answered HTTP (\d+)/.exec(text);
  if (/no WebAssembly/.test(text)) return "No WebAssembly here.";
  if (/Content.Security.Policy|unsafe-eval/i.test(text)) return "The CSP needs script-src 'wasm-unsafe-eval' (see README).";
  if (/DecompressionStream/.test(text)) return "No DecompressionStream here for the inlined copy.";
  if (status) return `The .wasm answered HTTP ${status[1]}: serve it, or the inlined copy's chunk.`;
  if (/with HTML/.test(text)) return "The .wasm URL answered a page: serve it, or the inlined copy's chunk.";
  return "Both blocked, or offline.";
}

/** Loads `input` once per page; never rejects. `source` names an input that is not the
 * app's (the script tag's inlined copy). */
export function loadWith(input, source) {
  let wasmSource = "url";
  loading = loading || Promise.resolve()
    .then(() => {
      if (typeof WebAssembly !== "object") throw new Error("this browser has no WebAssembly");
      const inline = () => import(/* webpackChunkName: "mau-beacon-inline" */ "./inline.js").then((m) => m.unpack());
      let wasm;
      if (source) {
        wasmSource = source;
        wasm = input;
      } else if (input === undefined || typeof input === "string" || input instanceof URL) {
        wasm = fetchWasm(input === undefined ? new URL("../pkg/web/mau_beacon_bg.wasm", import.meta.url) : input).catch((miss) => {
          wasmSource = "inline";
          return inline().catch((cause) => {
            throw new Error(`${miss.message}; the inlined copy: ${cause}`);
          });
        });
      } else {
        wasmSource = "input";
        wasm = input;
      }
      return init({ module_or_path: wasm });
    })
    .then(
      () => ({ ok: true, wasmSource }),
      (cause) => {
        const text = cause && cause.name === "Error" ? cause.message : String(cause);
        return {
          ok: false,
          error: failure(
            "wasm_unavailable",
            `mau-beacon: its WebAssembly did not load (${text}); no beacons from this page, the app runs on. ${likelyCause(text)}`,
            cause,
          ),
        };
      },
    );
  return loading;
}

// Size: what each shipped file weighs (raw, gzip -9, brotli q11), what takes the wasm's
// bytes (twiggy on a copy of the wasm that keeps its function names), beside the sizes of
// other browser SDKs. Measures whatever scripts/build.sh last built.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import { kb, printTable } from "./table.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => path.join(ROOT, "node_modules/.bin", name);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-bench-size-"));

const gzip = (buf) => execFileSync("gzip", ["-9c"], { input: buf, maxBuffer: 1 << 28 }).length;
const brotli = (buf) =>
  zlib.brotliCompressSync(buf, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: buf.length,
    },
  }).length;

/** esbuild, as an app's bundler would minify; returns the output bytes. */
function esbuild(entry, args) {
  const out = path.join(tmp, `${path.basename(entry)}.${args.length}.min.js`);
  execFileSync(bin("esbuild"), [path.join(ROOT, entry), "--minify", "--format=esm", "--log-level=error", `--outfile=${out}`, ...args]);
  return fs.readFileSync(out);
}

const wasm = fs.readFileSync(path.join(ROOT, "pkg/web/mau_beacon_bg.wasm"));
const glue = esbuild("pkg/web/mau_beacon.js", []);
const entryAlone = esbuild("js/index.js", []);
const entryBundle = esbuild("js/index.js", ["--bundle"]);
const global = fs.readFileSync(path.join(ROOT, "dist/mau-beacon.global.js"));

const files = [
  ["pkg/web/mau_beacon_bg.wasm", wasm],
  ["pkg/web/mau_beacon.js (glue, minified)", glue],
  ["js/index.js (entry alone, minified)", entryAlone],
  ["js/index.js + glue (bundled, minified)", entryBundle],
  ["dist/mau-beacon.global.js (script tag)", global],
];
const sizes = files.map(([name, buf]) => ({ name, raw: buf.length, gz: gzip(buf), br: brotli(buf) }));
const esm = { raw: wasm.length + entryBundle.length, gz: gzip(wasm) + gzip(entryBundle), br: brotli(wasm) + brotli(entryBundle) };
printTable(
  "SIZE: shipped files (KB = 1000 bytes)",
  ["file", "raw KB", "gzip -9 KB", "brotli KB"],
  [
    ...sizes.map((s) => [s.name, kb(s.raw), kb(s.gz), kb(s.br)]),
    ["ES module total (wasm + entry and glue)", kb(esm.raw), kb(esm.gz), kb(esm.br)],
  ],
  [
    "gzip: gzip -9 (no file name stored); brotli: quality 11. Minified with the project's esbuild, as a bundler would.",
    "The ES module total is what an `import` of the package downloads; the script-tag file inlines the wasm.",
  ],
);

// Other SDKs: figures quoted from the project's delivery survey (min + gzip of a minimal
// init-and-send bundle, measured with esbuild), not measured here.
const ANCHORS = [
  ["web-vitals (no transport)", 3.3],
  ["Boomerang core", 12.1],
  ["Snowplow browser tracker", 18.2],
  ["OpenTelemetry web + batch + OTLP/HTTP", 20.2],
  ["Sentry browser", 33.2],
  ["Segment analytics-next", 43.8],
  ["PostHog (slim)", 55.2],
  ["Amplitude", 68.7],
  ["@twilio/conversations (self-contained build)", 125],
];
const ours = esm.gz / 1000;
const global_ = sizes[4].gz / 1000;
printTable(
  "SIZE: beside other browser SDKs (gzip KB; theirs quoted, not re-measured)",
  ["SDK", "gzip KB", "mau-beacon ES module / it", "mau-beacon script tag / it"],
  [
    ["mau-beacon ES module (measured above)", ours.toFixed(1), "", ""],
    ["mau-beacon script tag (measured above)", global_.toFixed(1), "", ""],
    ...ANCHORS.map(([n, v]) => [n, (n.startsWith("@twilio") ? "~" : "") + v.toFixed(1), `${(ours / v).toFixed(2)}x`, `${(global_ / v).toFixed(2)}x`]),
  ],
  ["Quoted figures: docs of the delivery survey (Sentry 11.12, PostHog 1.449, Segment 1.84, Snowplow 4.10, OTel 0.223, Boomerang 1.815, web-vitals 6.2, Amplitude 2.48)."],
);

// ---- what takes the bytes: twiggy on a named copy of the same wasm -------------------

/** Byte size of each section of a wasm module, by section id (custom sections by name). */
function sections(buf) {
  const out = {};
  let i = 8;
  const leb = () => {
    let r = 0, s = 0, b;
    do { b = buf[i++]; r |= (b & 0x7f) << s; s += 7; } while (b & 0x80);
    return r >>> 0;
  };
  const NAMES = ["custom", "type", "import", "function", "table", "memory", "global", "export", "start", "element", "code", "data", "datacount", "tag"];
  while (i < buf.length) {
    const id = buf[i++];
    const size = leb();
    const start = i;
    let name = NAMES[id] ?? `id${id}`;
    if (id === 0) { const n = leb(); name = `custom:${buf.subarray(i, i + n).toString()}`; }
    out[name] = (out[name] ?? 0) + size;
    i = start + size;
  }
  return out;
}

const shippedSections = sections(wasm);
printTable(
  "SIZE: sections of the shipped wasm",
  ["section", "bytes", "% of file"],
  Object.entries(shippedSections).sort((a, b) => b[1] - a[1]).map(([n, b]) => [n, b, ((100 * b) / wasm.length).toFixed(1)]),
);

const twiggy = process.env.TWIGGY ?? "twiggy";
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target");
const rawWasm = path.join(targetDir, "wasm32-unknown-unknown/release/mau_beacon.wasm");
try {
  // The shipped wasm has no names (--strip-debug). Rebuild the same bindgen + wasm-opt -Oz
  // steps from cargo's output, keeping the name section (-g); the code section is checked
  // against the shipped one below so a drift in the build's flags shows.
  execFileSync("wasm-bindgen", ["--target", "web", "--out-dir", tmp, rawWasm]);
  const named = path.join(tmp, "named.wasm");
  execFileSync(bin("wasm-opt"), [
    "-Oz", "-g", "--strip-producers", "--enable-bulk-memory", "--enable-nontrapping-float-to-int", "--enable-sign-ext",
    "--enable-mutable-globals", "--enable-reference-types", "--enable-multivalue",
    path.join(tmp, "mau_beacon_bg.wasm"), "-o", named,
  ]);
  const namedSections = sections(fs.readFileSync(named));
  const items = JSON.parse(execFileSync(twiggy, ["top", "-n", "100000", "--format", "json", named], { maxBuffer: 1 << 28 }).toString());
  const exported = new Set(items.filter((it) => /^export "/.test(it.name)).map((it) => it.name.slice(8, -1)));
  const shipped = items.filter((it) => !isNameSection(it.name));
  const groups = new Map();
  for (const it of shipped) {
    const g = group(it.name, exported);
    const cur = groups.get(g) ?? { bytes: 0, n: 0 };
    cur.bytes += it.shallow_size;
    cur.n += 1;
    groups.set(g, cur);
  }
  const total = shipped.reduce((s, it) => s + it.shallow_size, 0);
  printTable(
    "SIZE: what takes the wasm's bytes (twiggy top, grouped by crate / kind)",
    ["group", "items", "bytes", "% of wasm"],
    [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 20).map(([g, v]) => [g, v.n, v.bytes, ((100 * v.bytes) / total).toFixed(1)]),
    [
      "Group = first `crate::` in the item's name (for `<A as B>::f`, A's crate); `{{closure}}` items of the SDK",
      "crate (its async state machines and callbacks) are counted apart; the name section is left out (not shipped).",
      `Named copy: code section ${namedSections.code} B, data ${namedSections.data ?? 0} B; shipped: code ${shippedSections.code} B, data ${shippedSections.data ?? 0} B` +
        (namedSections.code === shippedSections.code ? " (same code: the breakdown is the shipped file's)." : " (DIFFERENT: the build's wasm-opt flags changed; read the breakdown as approximate)."),
    ],
  );
  printTable(
    "SIZE: the 15 largest items (twiggy top)",
    ["item", "bytes", "% of wasm"],
    shipped.slice(0, 15).map((it) => [shorten(it.name), it.shallow_size, ((100 * it.shallow_size) / total).toFixed(1)]),
  );
} catch (e) {
  console.log(`\nSIZE: twiggy breakdown unavailable: ${e.message.split("\n")[0]}`);
}
fs.rmSync(tmp, { recursive: true, force: true });

function isNameSection(name) {
  return /names" subsection$/.test(name) || /custom section '?name'?$/.test(name);
}

/** The bucket an item's bytes go to; `exported` holds the wasm's export names. */
function group(name, exported) {
  if (isNameSection(name)) return "(name section: not shipped)";
  if (/^data segment|^data\[/.test(name)) return "data segments (strings, tables)";
  if (/^import /.test(name)) return "imports (JS functions the wasm calls)";
  if (/^export /.test(name)) return "exports (names)";
  if (/^custom section/.test(name)) return "custom sections";
  if (/^(type|table|elem|global|memory)\[/.test(name) || /^(table|elem|type)/.test(name)) return "types, tables, globals";
  if (/^code\[/.test(name)) return "(unnamed functions)";
  if (exported.has(/ shim$/.test(name) ? name.split(" ")[0] : name)) return "API entry points (exports, code inlined)";
  if (/^(__wbindgen|__wbg_|__externref|__wasm_bindgen)/.test(name)) return "wasm_bindgen (generated)";
  if (/^(mem(cpy|set|cmp|move)|__rust_)/.test(name)) return "compiler builtins, allocator glue";
  const plain = name.replace(/\[[0-9a-f]{8,}\]/g, "").replace(/^</, "");
  const m = plain.match(/([A-Za-z_][A-Za-z0-9_]*)::/);
  if (!m) return `other: ${name}`.slice(0, 42);
  if (m[1] === "__rustc") return "compiler builtins, allocator glue";
  if (m[1] === "mau_beacon" && name.includes("{{closure}}")) return "mau_beacon: {{closure}} (async, callbacks)";
  return m[1];
}

function shorten(name) {
  const s = name.replace(/::h[0-9a-f]{16}/g, "").replace(/\[[0-9a-f]{8,}\]/g, "");
  return s.length > 90 ? `${s.slice(0, 87)}...` : s;
}

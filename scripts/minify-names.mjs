// Shortens the wasm's import and export names, and the glue's uses of them, to a few letters.
// wasm-bindgen names each import `__wbg_<name>_<16 hex digits>`: about 90 of those, written
// once in the wasm and once in the glue, are ~2 KB of gzip that compress badly (docs/size.md).
// binaryen renames them in the wasm and prints the mapping; this applies it to the glue and
// to the wasm's declarations, by whole identifier.
//
// Usage: node scripts/minify-names.mjs <pkg dir> <file with wasm-opt's mapping>
import fs from "node:fs";
import path from "node:path";

const [dir, mapFile] = process.argv.slice(2);
const map = JSON.parse(fs.readFileSync(mapFile, "utf8"));
const wasm = fs.readFileSync(path.join(dir, "mau_beacon_bg.wasm"));
const glueFile = path.join(dir, "mau_beacon.js");
const typesFile = path.join(dir, "mau_beacon_bg.wasm.d.ts");

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/** Replaces `from` (a whole identifier, after `prefix`) by `to`; exactly `expect` times unless null. */
function rename(text, prefix, from, to, expect) {
  const re = new RegExp(`(?<![\\w$])(${escape(prefix)})${escape(from)}(?![\\w$])`, "g");
  let n = 0;
  const out = text.replace(re, (_, p) => (n++, p + to));
  if (expect !== null && n !== expect) throw new Error(`${prefix}${from}: ${n} uses in the glue, expected ${expect}`);
  return out;
}

// The module names binaryen chose, found through the new name of any of their imports.
const imported = WebAssembly.Module.imports(new WebAssembly.Module(wasm));
const newModule = new Map();
for (const [module, , to] of map.imports) {
  const found = imported.find((i) => i.name === to);
  if (!found) throw new Error(`import ${to} is not in the wasm`);
  newModule.set(module, found.module);
}

let glue = fs.readFileSync(glueFile, "utf8");
for (const [module, to] of newModule) glue = rename(glue, "", JSON.stringify(module), JSON.stringify(to), 1);
// Each import is one key of the imports object; each export is read as `wasm.<name>`.
for (const [, from, to] of map.imports) glue = rename(glue, "", `${from}:`, `${to}:`, 1);
for (const [from, to] of map.exports) glue = rename(glue, "wasm.", from, to, null);
fs.writeFileSync(glueFile, glue);

let types = fs.readFileSync(typesFile, "utf8");
for (const [from, to] of map.exports) types = rename(types, "export const ", from, to, null);
fs.writeFileSync(typesFile, types);

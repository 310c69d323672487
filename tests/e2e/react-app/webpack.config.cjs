// Plain webpack 5, no loaders: mau-beacon's `new URL("mau_beacon_bg.wasm", import.meta.url)`
// becomes an emitted asset on its own.
const path = require("node:path");

module.exports = {
  mode: "production",
  context: __dirname,
  entry: "./src/index.js",
  output: { path: path.join(__dirname, "dist"), filename: "main.js", clean: true },
  performance: { hints: false },
};

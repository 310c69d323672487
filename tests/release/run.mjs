// The release files, the container image and the systemd unit, as users get them:
// runs `scripts/release.sh --image`, then checks
//   - release/ holds the collector tarball, the npm tgz and SHA256SUMS, and `sha256sum -c` passes;
//   - the tarball's files, its binary static, stripped, free of build paths, at the workspace version;
//   - that binary serving over real HTTP on 127.0.0.1: a beacon in, read back (HTTP and CLI), SIGTERM;
//   - the npm tgz: the package's files, both licences, the workspace version;
//   - the image: its config (user 65532, entrypoint, port 8787, /data volume, env, labels), and
//     the collector inside it serving: `podman run` if the machine runs containers, else the
//     binary of the image's exported root (the output says which);
//   - `systemd-analyze verify` of the unit, installed with the binary in a temporary root.
// Prints figures as plain lines. Needs what scripts/setup.sh installs (podman, systemd, musl).
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const say = (s) => console.log(`[release-test] ${s}`);
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], ...opts });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-release-test-"));
const started = Date.now();
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

// The version and the target, from the workspace (what release.sh must follow).
const meta = JSON.parse(run("cargo", ["metadata", "--no-deps", "--format-version", "1", "--locked"]));
const collector = meta.packages.find((p) => p.name === "mau-collector");
const version = collector.version;
const target = "x86_64-unknown-linux-musl";
const top = `mau-collector-${version}-${target}`;
const tarball = `${top}.tar.gz`;
const npmTgz = `mau-beacon-${version}.tgz`;

say(`scripts/release.sh --image (version ${version})`);
let t = Date.now();
execFileSync("bash", ["scripts/release.sh", "--image"], { cwd: ROOT, stdio: "inherit" });
const releaseSecs = Math.round((Date.now() - t) / 1000);

// --- release/ and its checksums --------------------------------------------------------
const rel = path.join(ROOT, "release");
assert.deepEqual(fs.readdirSync(rel).sort(), [npmTgz, tarball, "SHA256SUMS"].sort(), "release/ holds the three files");
run("sha256sum", ["--strict", "-c", "SHA256SUMS"], { cwd: rel });
assert.deepEqual(
  fs.readFileSync(path.join(rel, "SHA256SUMS"), "utf8").trim().split("\n").map((l) => l.split(/\s+\*?/)[1]).sort(),
  [npmTgz, tarball].sort(),
  "SHA256SUMS covers both files",
);
const sums = fs.readFileSync(path.join(rel, "SHA256SUMS"), "utf8");
const broken = path.join(tmp, "sums-check");
fs.mkdirSync(broken);
fs.writeFileSync(path.join(broken, "SHA256SUMS"), sums);
fs.copyFileSync(path.join(rel, npmTgz), path.join(broken, npmTgz));
fs.writeFileSync(path.join(broken, tarball), "not the tarball");
assert.notEqual(spawnSync("sha256sum", ["--quiet", "-c", "SHA256SUMS"], { cwd: broken, stdio: "ignore" }).status, 0, "a changed file fails sha256sum -c");

// --- the collector tarball -------------------------------------------------------------
const expected = ["mau-collector", "README.md", "LICENSE-MIT", "LICENSE-APACHE", "collector/README.md", "deploy/mau-collector.service"];
if (fs.existsSync(path.join(ROOT, "CHANGELOG.md"))) expected.push("CHANGELOG.md");
const entries = run("tar", ["-tzf", path.join(rel, tarball)]).trim().split("\n");
assert.ok(entries.every((e) => e === `${top}/` || e.startsWith(`${top}/`)), `one top folder ${top}/: ${entries.join(", ")}`);
const files = entries.filter((e) => !e.endsWith("/")).map((e) => e.slice(top.length + 1));
assert.deepEqual(files.sort(), expected.sort(), "the tarball's files");
const unpacked = path.join(tmp, "tarball");
fs.mkdirSync(unpacked);
run("tar", ["-xzf", path.join(rel, tarball), "-C", unpacked]);
const dir = path.join(unpacked, top);
for (const f of expected.filter((f) => f !== "mau-collector")) {
  assert.ok(fs.readFileSync(path.join(dir, f)).equals(fs.readFileSync(path.join(ROOT, f))), `${f} as in the repository`);
}
const bin = path.join(dir, "mau-collector");
const fileSays = run("file", ["-b", bin]);
say(`file: ${fileSays.trim()}`);
assert.match(fileSays, /\bstatic(-pie)? linked\b/, "statically linked");
assert.doesNotMatch(fileSays, /dynamically linked|interpreter/, "no dynamic loader");
assert.match(fileSays, /, stripped\b/, "stripped");
const ldd = spawnSync("ldd", [bin], { encoding: "utf8" });
assert.match(ldd.stdout + ldd.stderr, /not a dynamic executable|statically linked/, `ldd: ${ldd.stdout}${ldd.stderr}`);
assert.equal(run(bin, ["--version"]).trim(), `mau-collector ${version}`);
const bytes = fs.readFileSync(bin);
for (const p of [ROOT, meta.target_directory, path.join(os.homedir(), ".cargo")]) {
  assert.equal(bytes.indexOf(p), -1, `the binary names no build path (${p})`);
}

// --- a collector serving: a beacon in, read back, SIGTERM -------------------------------
const adminToken = crypto.randomBytes(24).toString("hex");
const month = new Date().toISOString().slice(0, 7);

/** Waits for `listening on http://ADDR` on the child's stdout; rejects if it exits first. */
function listening(child, what) {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`${what}: no listening line in 30 s\n${err}`)), 30_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const e = new Error(`${what} exited (${code ?? signal}) before listening:\n${err.trim()}`);
      e.code = code;
      e.stderr = err;
      reject(e);
    });
  });
}

const exited = (child) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve([child.exitCode, child.signalCode])
    : new Promise((r) => child.once("exit", (code, signal) => r([code, signal])));

/** One beacon in, read back with the admin token; 401 without it; /healthz's version. */
async function exercise(base, label) {
  const identity = `release-${label}-${crypto.randomBytes(4).toString("hex")}@example.com`;
  const now = new Date().toISOString();
  const beacon = {
    v: 1, kind: "connected", identity, event_id: crypto.randomBytes(16).toString("hex"), month,
    occurred_at: now, sent_at: now, attempt: 1, dedupe: "month", sdk: { name: "mau-beacon", version },
  };
  const post = await fetch(`${base}/v1/beacons`, { method: "POST", headers: { "content-type": "text/plain;charset=UTF-8" }, body: JSON.stringify(beacon) });
  assert.equal(post.status, 200, `${label}: POST /v1/beacons ${await post.clone().text()}`);
  assert.deepEqual(await post.json(), { ok: true, accepted: 1 });
  const health = await (await fetch(`${base}/healthz`)).json();
  assert.equal(health.version, version, `${label}: /healthz version`);
  const anon = await fetch(`${base}/v1/months/${month}/identities`);
  assert.equal(anon.status, 401, `${label}: reads need the admin token`);
  await anon.arrayBuffer();
  const read = await fetch(`${base}/v1/months/${month}/identities?format=json`, { headers: { authorization: `Bearer ${adminToken}` } });
  assert.equal(read.status, 200, `${label}: GET identities`);
  const rows = await read.json();
  assert.deepEqual(rows.map((r) => [r.identity, r.connects, r.sources]), [[identity, 1, "sdk_connect"]], `${label}: the beacon read back`);
  return identity;
}

/** Runs `binary serve` on 127.0.0.1:0 with its db in `dataDir` (and the image's env when
 * given), exercises it, stops it with SIGTERM, then reads the db back with `export`. */
async function serveBinary(binary, dataDir, label, baseEnv = {}) {
  const db = path.join(dataDir, "mau-collector.db");
  const env = { ...baseEnv, MAU_COLLECTOR_LISTEN: "127.0.0.1:0", MAU_COLLECTOR_DB: db, MAU_COLLECTOR_ADMIN_TOKEN: adminToken, MAU_COLLECTOR_LOG: "warn" };
  const child = spawn(binary, ["serve"], { env, cwd: dataDir, stdio: ["ignore", "pipe", "pipe"] });
  let identity;
  try {
    const base = await listening(child, label);
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
    identity = await exercise(base, label);
  } finally {
    child.kill("SIGTERM");
  }
  assert.deepEqual(await exited(child), [0, null], `${label}: exits 0 on SIGTERM`);
  const exported = JSON.parse(run(binary, ["export", "--month", month, "--format", "json"], { env: { MAU_COLLECTOR_DB: db } }));
  assert.deepEqual(exported.map((r) => r.identity), [identity], `${label}: mau-collector export`);
  say(`${label}: served on 127.0.0.1, beacon stored and read back (HTTP and export), SIGTERM exit 0`);
}

const served = path.join(tmp, "served");
fs.mkdirSync(served);
await serveBinary(bin, served, "tarball binary");

// --- the npm package -------------------------------------------------------------------
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
const npmEntries = run("tar", ["-tzf", path.join(rel, npmTgz)]).trim().split("\n").map((e) => e.replace(/^package\//, ""));
for (const f of [...pkg.files, "package.json", "LICENSE-MIT", "LICENSE-APACHE"]) {
  assert.ok(npmEntries.includes(f), `${f} in ${npmTgz}`);
}
assert.ok(!npmEntries.some((f) => /^(crate|collector|tests|scripts|deploy)\//.test(f)), `no sources in ${npmTgz}: ${npmEntries.join(", ")}`);
const packedPkg = JSON.parse(run("tar", ["-xzOf", path.join(rel, npmTgz), "package/package.json"]));
assert.equal(packedPkg.version, version, "the npm package's version is the workspace's");
for (const f of ["LICENSE-MIT", "LICENSE-APACHE"]) {
  assert.equal(run("tar", ["-xzOf", path.join(rel, npmTgz), `package/${f}`]), fs.readFileSync(path.join(ROOT, f), "utf8"), `${f} in ${npmTgz}`);
}
say(`${npmTgz}: ${npmEntries.length} files, both licences, version ${packedPkg.version}`);

// --- the container image ---------------------------------------------------------------
const image = `mau-collector:${version}`;
const [info] = JSON.parse(run("podman", ["image", "inspect", image]));
const cfg = info.Config;
assert.equal(cfg.User, "65532:65532", "numeric non-root user");
assert.deepEqual(cfg.Entrypoint, ["/mau-collector"]);
assert.deepEqual(cfg.Cmd, ["serve"]);
assert.deepEqual(Object.keys(cfg.ExposedPorts ?? {}), ["8787/tcp"]);
assert.deepEqual(Object.keys(cfg.Volumes ?? {}), ["/data"]);
assert.ok(cfg.Env.includes("MAU_COLLECTOR_LISTEN=0.0.0.0:8787"), cfg.Env.join(" "));
assert.ok(cfg.Env.includes("MAU_COLLECTOR_DB=/data/mau-collector.db"), cfg.Env.join(" "));
assert.equal(cfg.Labels["org.opencontainers.image.version"], version);
assert.equal(cfg.Labels["org.opencontainers.image.licenses"], collector.license);
assert.equal(cfg.Labels["org.opencontainers.image.source"], collector.repository);
say("image config: user 65532:65532, entrypoint /mau-collector serve, port 8787/tcp, volume /data, OCI labels");

let imageRun;
const name = `mau-release-test-${crypto.randomBytes(4).toString("hex")}`;
// Secrets by name only (-e NAME): podman takes the value from this process's environment.
const podmanRun = spawn("podman", ["run", "--rm", "--name", name, "-p", "127.0.0.1::8787", "-e", "MAU_COLLECTOR_ADMIN_TOKEN", image], {
  env: { ...process.env, MAU_COLLECTOR_ADMIN_TOKEN: adminToken },
  stdio: ["ignore", "pipe", "pipe"],
});
try {
  await listening(podmanRun, "podman run");
  try {
    const port = run("podman", ["port", name, "8787/tcp"]).trim().split("\n")[0];
    assert.match(port, /^127\.0\.0\.1:\d+$/);
    await exercise(`http://${port}`, "podman run");
  } finally {
    spawnSync("podman", ["stop", "-t", "10", name], { stdio: "ignore" });
  }
  assert.deepEqual(await exited(podmanRun), [0, null], "podman run: exits 0 on SIGTERM");
  imageRun = "podman run: served on a published 127.0.0.1 port, beacon stored and read back, podman stop exit 0";
} catch (e) {
  // 125-127: podman or the OCI runtime could not start the container (sandboxes without
  // the rights containers need). Anything else is the image's own failure.
  if (![125, 126, 127].includes(e.code)) throw e;
  spawnSync("podman", ["rm", "-f", name], { stdio: "ignore" });
  const why = e.stderr.trim().split("\n").pop();
  say(`podman run refused here (exit ${e.code}: ${why}); running the image's root instead`);
  const cid = run("podman", ["create", image]).trim();
  const rootfs = path.join(tmp, "image-root");
  fs.mkdirSync(rootfs);
  try {
    run("podman", ["export", "-o", path.join(tmp, "image.tar"), cid]);
  } finally {
    spawnSync("podman", ["rm", cid], { stdio: "ignore" });
  }
  const listing = run("tar", ["-tvf", path.join(tmp, "image.tar")]).trim().split("\n");
  const dataLine = listing.find((l) => / data\/?$/.test(l));
  assert.match(dataLine ?? "", /^drwx.* 65532\/65532 /, `/data is a folder owned by 65532: ${listing.join("\n")}`);
  run("tar", ["-xf", path.join(tmp, "image.tar"), "-C", rootfs, "--no-same-owner"]);
  const inside = fs.readdirSync(rootfs).sort();
  assert.deepEqual(inside.filter((f) => !["dev", "etc", "proc", "run", "sys"].includes(f) || fs.readdirSync(path.join(rootfs, f)).length), ["data", "mau-collector"], `the image holds the binary and /data: ${inside.join(", ")}`);
  assert.ok(fs.readFileSync(path.join(rootfs, "mau-collector")).equals(bytes), "the image's binary is the tarball's");
  const imageEnv = Object.fromEntries(cfg.Env.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  await serveBinary(path.join(rootfs, "mau-collector"), path.join(rootfs, "data"), "image root", imageEnv);
  imageRun = `extracted image root (podman run refused: ${why}): its binary served on 127.0.0.1, beacon stored and read back, SIGTERM exit 0`;
}
say(`image test: ${imageRun}`);

// --- the systemd unit ------------------------------------------------------------------
const unit = fs.readFileSync(path.join(dir, "deploy/mau-collector.service"), "utf8");
const directives = unit.split("\n").filter((l) => /^[A-Z]\w*=/.test(l));
for (const d of ["DynamicUser=yes", "StateDirectory=mau-collector", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
  "NoNewPrivileges=yes", "CapabilityBoundingSet=", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
  "SystemCallFilter=@system-service", "Restart=on-failure", "EnvironmentFile=/etc/mau-collector/env",
  "Environment=MAU_COLLECTOR_DB=/var/lib/mau-collector/mau-collector.db"]) {
  assert.ok(directives.includes(d), `the unit has ${d}`);
}
const execStart = directives.find((l) => l.startsWith("ExecStart="));
assert.equal(execStart, "ExecStart=/usr/local/bin/mau-collector serve", "ExecStart carries no secret");
// verify --root checks the unit as installed: the unit in /etc/systemd/system and the
// binary at ExecStart's path inside a temporary root, with the system's own units beside
// (the targets a service depends on). The shipped unit is checked unchanged.
const sysroot = path.join(tmp, "sysroot");
const systemUnits = ["/usr/lib/systemd/system", "/lib/systemd/system"].find((d) => fs.existsSync(path.join(d, "sysinit.target")));
assert.ok(systemUnits, "the system's units (systemd installed)");
fs.cpSync(systemUnits, path.join(sysroot, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
fs.mkdirSync(path.join(sysroot, "etc/systemd/system"), { recursive: true });
fs.mkdirSync(path.join(sysroot, "usr/local/bin"), { recursive: true });
const installedUnit = path.join(sysroot, "etc/systemd/system/mau-collector.service");
fs.writeFileSync(installedUnit, unit);
const verify = () => spawnSync("systemd-analyze", ["verify", "--man=no", `--root=${sysroot}`, installedUnit], { encoding: "utf8" });
const missing = verify();
assert.notEqual(missing.status, 0, "verify fails while ExecStart's binary is missing");
fs.copyFileSync(bin, path.join(sysroot, "usr/local/bin/mau-collector"));
fs.chmodSync(path.join(sysroot, "usr/local/bin/mau-collector"), 0o755);
const verified = verify();
assert.equal(verified.status, 0, `systemd-analyze verify: ${verified.stdout}${verified.stderr}`);
assert.equal((verified.stdout + verified.stderr).trim(), "", "systemd-analyze verify prints no warning");
say("systemd-analyze verify: passes with the unit and the binary installed in a temporary root");

// --- figures ---------------------------------------------------------------------------
const size = (f) => fs.statSync(f).size;
const imageSize = run("podman", ["image", "inspect", "--format", "{{.Size}}", image]).trim();
console.log(`release.sh --image: ${releaseSecs} s`);
console.log(`collector tarball: ${size(path.join(rel, tarball))} bytes`);
console.log(`npm tgz: ${size(path.join(rel, npmTgz))} bytes`);
console.log(`collector binary: ${bytes.length} bytes`);
console.log(`image ${image}: ${imageSize} bytes`);
console.log(`release test: ${Math.round((Date.now() - started) / 1000)} s`);

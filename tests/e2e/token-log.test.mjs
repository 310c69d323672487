// The Node token-log snippet (collector/snippets/token-log.mjs) against the real
// mau-collector: entries stored once, the token never sent, failures resolved not thrown.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { tokenLogger } from "../../collector/snippets/token-log.mjs";
import { buildCollector, startCollector, utcMonth } from "../support/collector.mjs";

const INGEST = "node-test-ingest-secret";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-token-log-"));
let collector;

before(async () => {
  buildCollector();
  collector = await startCollector({ db: path.join(tmp, "c.db"), env: { MAU_COLLECTOR_INGEST_TOKEN: INGEST } });
});
after(async () => {
  await collector?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("a wrong configuration throws an Error naming the field", () => {
  assert.throws(() => tokenLogger({ ingestToken: "x" }), /`url`/);
  assert.throws(() => tokenLogger({ url: "ftp://x", ingestToken: "x" }), /`url`/);
  assert.throws(() => tokenLogger({ url: "http://127.0.0.1:1" }), /`ingestToken`/);
});

test("entries are stored once, with identity and times only", async () => {
  const sent = [];
  const spy = (url, init) => {
    sent.push(init.body);
    return fetch(url, init);
  };
  const log = tokenLogger({ url: collector.url + "/", ingestToken: INGEST, fetch: spy });
  const issuedAt = new Date();
  const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJncmFudHMiOnt9fQ.c2lnbmF0dXJl";
  assert.deepEqual(await log({ identity: "alice", ttl: 3600, tokenId: "req-1" }), { ok: true, status: 200 });
  assert.deepEqual(await log({ identity: "alice", ttl: 3600, tokenId: "req-1" }), { ok: true, status: 200 });
  assert.deepEqual(await log({ identity: "bob", issuedAt, token: jwt }), { ok: true, status: 200 });
  assert.deepEqual(await log({ identity: "bob", issuedAt }), { ok: true, status: 200 });
  assert.equal(sent.length, 4);
  for (const body of sent) {
    assert.ok(!body.includes(jwt), body);
    assert.deepEqual(Object.keys(JSON.parse(body)).filter((k) => !["identity", "issued_at", "expires_at", "token_id"].includes(k)), []);
  }
  assert.ok(JSON.parse(sent[0]).expires_at > JSON.parse(sent[0]).issued_at);
  const report = await collector.read(`/v1/months/${utcMonth()}/report`);
  assert.equal(report.tokens_issued, 2);
  assert.deepEqual(report.tokens_never_connected, ["alice", "bob"]);
});

test("failures resolve to a result and reach onError, never the caller", async () => {
  const seen = [];
  const wrong = tokenLogger({ url: collector.url, ingestToken: "wrong", onError: (r) => seen.push(r) });
  const r = await wrong({ identity: "carol" });
  assert.deepEqual([r.ok, r.status, r.code], [false, 401, "unauthorized"]);
  const bad = await wrong({ identity: "" });
  assert.equal(bad.code, "bad_identity");
  const down = tokenLogger({ url: "http://127.0.0.1:9", ingestToken: INGEST, retries: 1, onError: (r) => seen.push(r) });
  const d = await down({ identity: "carol" });
  assert.deepEqual([d.ok, d.code], [false, "network_error"]);
  const throwing = tokenLogger({ url: "http://127.0.0.1:9", ingestToken: INGEST, retries: 0, onError: () => { throw new Error("boom"); } });
  assert.equal((await throwing({ identity: "x" })).ok, false);
  assert.equal(seen.length, 3);
});

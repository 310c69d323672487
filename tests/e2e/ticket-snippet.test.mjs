// The Node ticket snippet (collector/snippets/ticket.mjs) against the real mau-collector
// started with --require-ticket: its tickets are taken, forged or other-identity ones not.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { mintTicket } from "../../collector/snippets/ticket.mjs";
import { buildCollector, startCollector, utcMonth } from "../support/collector.mjs";

const SECRET = "node-test-ticket-secret";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-ticket-"));
let collector;

before(async () => {
  buildCollector();
  collector = await startCollector({
    db: path.join(tmp, "c.db"),
    env: { MAU_COLLECTOR_TICKET_SECRET: SECRET, MAU_COLLECTOR_REQUIRE_TICKET: "true" },
  });
});
after(async () => {
  await collector?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const beacon = (identity, eventId, ticket) => {
  const now = new Date().toISOString();
  return { v: 1, kind: "connected", identity, event_id: eventId, month: utcMonth(), occurred_at: now,
    sent_at: now, attempt: 1, dedupe: "month", sdk: { name: "mau-beacon", version: "0.1.0" }, ticket };
};
const post = (body) => fetch(collector.url + "/v1/beacons", { method: "POST", body: JSON.stringify(body) });

test("the known answer, shared with the Rust mint and computed independently", () => {
  const t = mintTicket("test-ticket-secret", "alice@example.com", { ttl: 1, now: new Date(1767225599 * 1000) });
  assert.equal(t, "v1.1767225600.GDzdOW0gHjGifB63TF0M7ahPj-3o_O5MbCWGetLIYyk");
});

test("a wrong argument throws an Error naming it", () => {
  assert.throws(() => mintTicket("", "a"), /`secret`/);
  assert.throws(() => mintTicket("s", ""), /`identity`/);
  assert.throws(() => mintTicket("s", "a", { ttl: 1.5 }), /`ttl`/);
  assert.throws(() => mintTicket("s", "a", { now: new Date("x") }), /`now`/);
});

test("the collector stores ticketed beacons and refuses forged ones", async () => {
  const ok = await post(beacon("alice", "t1", mintTicket(SECRET, "alice")));
  assert.equal(ok.status, 200, await ok.text());
  for (const [ticket, what] of [
    [mintTicket(SECRET, "alice"), "another identity's"],
    [mintTicket("guess", "mallory"), "forged"],
    [mintTicket(SECRET, "mallory", { ttl: 60, now: new Date(Date.now() - 3600_000) }), "expired"],
    [undefined, "missing"],
  ]) {
    const r = await post(beacon("mallory", "m-" + what, ticket));
    assert.equal(r.status, 401, what);
    assert.equal((await r.json()).code, "bad_ticket", what);
  }
  const list = await collector.read(`/v1/months/${utcMonth()}/identities`);
  assert.deepEqual(list.map((r) => r.identity), ["alice"]);
});

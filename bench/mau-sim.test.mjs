// The MAU simulation counts right on a month small enough to count by hand.
// Run: node --test bench/ (bench/run.sh runs it before the month).
import assert from "node:assert/strict";
import { test } from "node:test";
import { runMonths } from "./mau-sim.mjs";

test("a hand-counted month: MAUs and clients made per strategy", async () => {
  const identities = ["a@example.com", "b@example.com", "c@example.com"];
  // a: three views, the second opens chat; b: one view, no chat; c: opens chat, then a view.
  const views = [[0, false], [0, true], [0, false], [1, false], [2, true], [2, false]];
  const r = await runMonths(views, identities);
  // eager: every view makes a client; every visitor is billed.
  assert.deepEqual([r.eager.mau, r.eager.clients, r.eager.beacons], [3, 6, 3]);
  // connectOn / connectWhenVisible: only the two views that open chat make a client.
  assert.deepEqual([r.connectOn.mau, r.connectOn.clients, r.connectOn.beacons], [2, 2, 2]);
  assert.deepEqual([r.connectWhenVisible.mau, r.connectWhenVisible.clients, r.connectWhenVisible.beacons], [2, 2, 2]);
  // eagerIfCounted: as connectOn, plus a client at load on a's third and c's second view
  // (counted by then on that identity's browser), and none for b, whose browser is its own.
  assert.deepEqual([r.eagerIfCounted.mau, r.eagerIfCounted.clients, r.eagerIfCounted.beacons], [2, 4, 2]);
  for (const s of Object.values(r)) assert.deepEqual([s.errorCount, s.pageErrors], [0, []]);
});

// MAU cost: a simulated month of page views through the real LazyClient in headless
// Chromium, with a createClient that counts, under four ways of creating the client.
// What Twilio bills is the identities whose client connected at least once this month.
import { runMonths, STRATEGIES } from "./mau-sim.mjs";
import { printTable } from "./table.mjs";

const env = (name, dflt) => (process.env[name] === undefined ? dflt : Number(process.env[name]));
const SEED = env("BENCH_SEED", 9);
const VIEWS = env("BENCH_VIEWS", 10_000);
const IDENTITIES = env("BENCH_IDENTITIES", 2_000);
const OPEN_RATE = env("BENCH_OPEN_RATE", 0.15);
// The price is a parameter: USD 0.05 per monthly active user is an assumed list price, not
// checked against Twilio's pricing page from here; the 200 free MAU of a month are from the
// reference notes. Prices change and contracts differ.
const PRICE = env("BENCH_PRICE_PER_MAU_USD", 0.05);
const FREE = env("BENCH_FREE_MAU", 200);

/** mulberry32: a small seeded PRNG, so every run simulates the same month. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The month: each page view is made by an identity drawn uniformly at random, and opens
// the chat with probability OPEN_RATE, independently of the identity's other views.
const rand = rng(SEED);
const views = Array.from({ length: VIEWS }, () => [Math.floor(rand() * IDENTITIES), rand() < OPEN_RATE]);
const identities = Array.from({ length: IDENTITIES }, (_, i) => `user-${String(i).padStart(4, "0")}@example.com`);

// What the schedule says each strategy must bill, to check the simulation against.
const visitors = new Set(views.map(([w]) => w)).size;
const openers = new Set(views.filter(([, o]) => o).map(([w]) => w)).size;
const expected = { eager: visitors, connectOn: openers, connectWhenVisible: openers, eagerIfCounted: openers };
// eagerIfCounted makes a client on every view of an identity after its first chat.
const opened = new Set();
let expectedEagerIfCountedClients = 0;
for (const [w, o] of views) {
  if (opened.has(w) || o) expectedEagerIfCountedClients += 1;
  if (o) opened.add(w);
}
const expectedClients = { eager: VIEWS, connectOn: views.filter(([, o]) => o).length, connectWhenVisible: views.filter(([, o]) => o).length, eagerIfCounted: expectedEagerIfCountedClients };

const results = await runMonths(views, identities);

const bill = (mau) => Math.max(0, mau - FREE) * PRICE;
const eager = results.eager.mau;
printTable(
  `MAU COST: a simulated month, ${VIEWS} page views, ${IDENTITIES} identities, ${OPEN_RATE * 100} % of views open chat (seed ${SEED})`,
  ["strategy", "MAUs billed", "vs eager", "bill USD", "saved USD", "clients made", "beacons (identities)", "expected MAUs", "sim s"],
  STRATEGIES.map((s) => {
    const r = results[s];
    return [s, r.mau, `${((100 * r.mau) / eager).toFixed(1)} %`, bill(r.mau).toFixed(2), (bill(eager) - bill(r.mau)).toFixed(2), r.clients,
      r.beacons, expected[s], r.seconds.toFixed(0)];
  }),
  [
    `Price: USD ${PRICE} per MAU, first ${FREE} MAU free (parameters; the default price is assumed, not verified: check`,
    "  Twilio's Conversations pricing and your contract; BENCH_PRICE_PER_MAU_USD / BENCH_FREE_MAU to change). Without the free tier: eager " +
      `USD ${(eager * PRICE).toFixed(2)}; ` + STRATEGIES.slice(1).map((s) => `${s} USD ${(results[s].mau * PRICE).toFixed(2)}`).join("; ") + ".",
    "MAUs billed: identities whose client (made by the counting createClient) emitted \"connected\" at least once.",
    "Expected MAUs: from the schedule alone (eager: identities with a view; the others: identities with a view that opens chat).",
    `Clients made: createClient calls; expected ${STRATEGIES.map((s) => `${s} ${expectedClients[s]}`).join(", ")}.`,
    "Beacons: distinct identities whose beacon reached the loopback collector under that strategy.",
    "eagerIfCounted arms connectOn and also connects at load when the tracker says the identity is counted this month.",
    ...STRATEGIES.filter((s) => results[s].errorCount || results[s].pageErrors.length)
      .map((s) => `${s}: ${results[s].errorCount} onError reports (${results[s].errors.join(" | ")}), page errors: ${results[s].pageErrors.join(" | ")}`),
  ],
);

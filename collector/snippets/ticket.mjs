// Signed tickets for Node backends: mint one beside the Twilio access token and hand both
// to the browser, so mau-collector (started with --ticket-secret and --require-ticket)
// stores only beacons your backend vouched for. Copy this file into your backend (no
// dependencies; Node 16+ for base64url).
//
//   import { mintTicket } from "./ticket.mjs";
//   const ticket = mintTicket(process.env.MAU_COLLECTOR_TICKET_SECRET, identity, { ttl: 3600 });
//   res.json({ token: accessToken.toJwt(), ticket });   // LazyClient's getToken returns { token, ticket }
import { createHmac } from "node:crypto";

/**
 * A ticket `v1.<exp>.<sig>`: `exp` is Unix seconds, `sig` is base64url (no padding) of
 * HMAC-SHA256(secret, "v1." + exp + "." + identity). Throws an Error naming a wrong argument.
 * @param {string} secret the collector's MAU_COLLECTOR_TICKET_SECRET
 * @param {string} identity the Twilio identity, exactly as in the access token
 * @param {{ ttl?: number, now?: Date }} [options] seconds of validity (default 3600)
 * @returns {string}
 */
export function mintTicket(secret, identity, options = {}) {
  const { ttl = 3600, now = new Date() } = options;
  if (typeof secret !== "string" || secret === "") throw new Error("mintTicket: `secret` must be a non-empty string");
  if (typeof identity !== "string" || identity === "") throw new Error("mintTicket: `identity` must be a non-empty string");
  if (!Number.isInteger(ttl) || ttl <= 0) throw new Error("mintTicket: `ttl` must be a whole number of seconds above 0");
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new Error("mintTicket: `now` must be a valid Date");
  const exp = Math.floor(now.getTime() / 1000) + ttl;
  const sig = createHmac("sha256", secret).update(`v1.${exp}.${identity}`).digest("base64url");
  return `v1.${exp}.${sig}`;
}

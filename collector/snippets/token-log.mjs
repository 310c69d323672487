// Token-issuance log for Node backends: call it beside `new AccessToken(...)` so that
// mau-collector knows which identities were given a Twilio token, and when. It sends the
// identity and times only, never the token. Copy this file into your backend (no
// dependencies; Node 18+ for fetch and AbortSignal.timeout).
//
//   import { tokenLogger } from "./token-log.mjs";
//   const logToken = tokenLogger({
//     url: "https://app.example.com/t",                 // the collector's base URL
//     ingestToken: process.env.MAU_COLLECTOR_INGEST_TOKEN,
//   });
//   const token = new AccessToken(accountSid, apiKeySid, apiKeySecret, { identity, ttl: 3600 });
//   token.addGrant(new ChatGrant({ serviceSid }));
//   logToken({ identity, ttl: 3600 });                  // not awaited: never in the way
//   return token.toJwt();

/**
 * @typedef {{ identity: string, issuedAt?: Date, ttl?: number, tokenId?: string }} TokenEntry
 * @typedef {{ ok: boolean, status?: number, code?: string, error?: string }} LogResult
 */

/**
 * Makes a logging function. A wrong configuration throws an Error naming the field; the
 * returned function never throws or rejects: it resolves to a LogResult, and reports a
 * failure to `onError` (default: console.warn).
 * @param {{ url: string, ingestToken: string, timeoutMs?: number, retries?: number,
 *   fetch?: typeof fetch, onError?: (result: LogResult) => void }} options
 * @returns {(entry: TokenEntry) => Promise<LogResult>}
 */
export function tokenLogger(options) {
  const { url, ingestToken, timeoutMs = 3000, retries = 2, onError } = options ?? {};
  if (typeof url !== "string" || !/^https?:\/\/[^/]/.test(url)) {
    throw new Error("tokenLogger: `url` must be the collector's http(s) base URL");
  }
  if (typeof ingestToken !== "string" || ingestToken === "") {
    throw new Error("tokenLogger: `ingestToken` must be the collector's ingest token (MAU_COLLECTOR_INGEST_TOKEN)");
  }
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const endpoint = url.replace(/\/+$/, "") + "/v1/tokens";
  const report = onError ?? ((r) => console.warn(`mau-collector token log: ${r.code ?? r.status}: ${r.error}`));

  return async function logToken(entry) {
    const result = await send(entry).catch((e) => ({ ok: false, code: "client_error", error: String(e?.message ?? e) }));
    if (!result.ok) {
      try {
        report(result);
      } catch {
        // A failing reporter must not reach the caller either.
      }
    }
    return result;
  };

  async function send(entry) {
    const { identity, issuedAt = new Date(), ttl, tokenId } = entry ?? {};
    if (typeof identity !== "string" || identity === "") {
      return { ok: false, code: "bad_identity", error: "`identity` must be a non-empty string" };
    }
    if (!(issuedAt instanceof Date) || Number.isNaN(issuedAt.getTime())) {
      return { ok: false, code: "bad_timestamp", error: "`issuedAt` must be a valid Date" };
    }
    // Only these fields are sent, whatever else the entry holds.
    const body = { identity, issued_at: issuedAt.toISOString() };
    if (Number.isFinite(ttl) && ttl > 0) body.expires_at = new Date(issuedAt.getTime() + ttl * 1000).toISOString();
    if (typeof tokenId === "string" && tokenId !== "") body.token_id = tokenId;
    // Retries are safe: the collector keys each entry on token_id, else identity + issued_at.
    let last;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
      try {
        const res = await fetchImpl(endpoint, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${ingestToken}` },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (res.ok) return { ok: true, status: res.status };
        const err = await res.json().catch(() => ({}));
        last = { ok: false, status: res.status, code: err.code, error: err.error ?? `HTTP ${res.status}` };
        if (res.status < 500 && res.status !== 429) return last; // not worth retrying
      } catch (e) {
        last = { ok: false, code: "network_error", error: String(e?.message ?? e) };
      }
    }
    return last;
  }
}

// Real-shaped Twilio access tokens for tests.
//
// A Twilio access token is a JWT signed with HS256 by an API key secret, with
// the header `cty: "twilio-fpa;v=1"`. The Conversations client never decodes
// it (it only checks for a non-empty string); our fake Twilsock server does,
// to read `grants.identity`, exactly like the real service would.
//
//   import { makeToken, decodeToken } from './jwt.mjs';
//   const tok = makeToken({ identity: 'alice' });
//   const opaque = makeToken({ identity: null });       // no grants.identity
//   const expired = makeToken({ identity: 'bob', ttl: -60 });

import { createHmac, randomBytes } from 'node:crypto';

/** Test key: never a real credential. */
export const TEST_ACCOUNT_SID = 'AC' + '0'.repeat(31) + '1';
export const TEST_API_KEY_SID = 'SK' + '0'.repeat(31) + '2';
export const TEST_API_KEY_SECRET = 'mau-beacon-test-secret-not-a-credential';
export const TEST_CHAT_SERVICE_SID = 'IS' + '0'.repeat(31) + '3';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/**
 * Make a signed access token.
 * @param {object} [o]
 * @param {string|null} [o.identity='user'] grants.identity; null or undefined-with-`opaque` omits it
 * @param {boolean} [o.opaque=false] omit grants.identity regardless of `identity`
 * @param {number} [o.iat] issued-at (seconds), default now
 * @param {number} [o.ttl=3600] lifetime in seconds (exp = iat + ttl); negative for an expired token
 * @param {number} [o.exp] explicit exp (seconds), overrides ttl
 * @param {number|null} [o.nbf] not-before; default = iat, null omits it
 * @param {string} [o.serviceSid] chat.service_sid
 * @param {object} [o.extraGrants] merged into grants
 * @param {string} [o.accountSid] sub
 * @param {string} [o.keySid] iss
 * @param {string} [o.secret] HMAC key
 * @returns {string} the JWT
 */
export function makeToken(o = {}) {
  const iat = o.iat ?? Math.floor(Date.now() / 1000);
  const exp = o.exp ?? iat + (o.ttl ?? 3600);
  const keySid = o.keySid ?? TEST_API_KEY_SID;
  const grants = {};
  const opaque = o.opaque || o.identity === null;
  if (!opaque) grants.identity = o.identity ?? 'user';
  grants.chat = { service_sid: o.serviceSid ?? TEST_CHAT_SERVICE_SID };
  Object.assign(grants, o.extraGrants ?? {});
  const header = { typ: 'JWT', alg: 'HS256', cty: 'twilio-fpa;v=1' };
  const payload = {
    jti: `${keySid}-${iat}-${randomBytes(6).toString('hex')}`,
    iss: keySid,
    sub: o.accountSid ?? TEST_ACCOUNT_SID,
    iat,
    ...(o.nbf === null ? {} : { nbf: o.nbf ?? iat }),
    exp,
    grants,
  };
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const sig = createHmac('sha256', o.secret ?? TEST_API_KEY_SECRET).update(signingInput).digest();
  return `${signingInput}.${b64url(sig)}`;
}

/**
 * Decode (and optionally verify) a token. Never throws.
 * @param {string} token
 * @param {string|false} [secret] verify the HS256 signature with this secret; false = don't verify
 * @returns {{ header: object, payload: object, valid: boolean } | null} null if not a JWT
 */
export function decodeToken(token, secret = TEST_API_KEY_SECRET) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    let valid = true;
    if (secret !== false) {
      const want = createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest('base64url');
      valid = want === parts[2];
    }
    return { header, payload, valid };
  } catch {
    return null;
  }
}

/** grants.identity of a token, or null (opaque or not a JWT). */
export function tokenIdentity(token) {
  const d = decodeToken(token, false);
  const id = d?.payload?.grants?.identity;
  return typeof id === 'string' && id !== '' ? id : null;
}

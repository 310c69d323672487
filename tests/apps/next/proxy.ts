// README's Content-Security-Policy for Next.js: a nonce per request, which Next puts on its
// own scripts, 'strict-dynamic' for the chunks they load, 'wasm-unsafe-eval' for
// mau-beacon's wasm, and connect-src for Twilio and the collector (same-site here).
import { NextResponse, type NextRequest } from "next/server";

export function proxy(request: NextRequest) {
  const nonce = btoa(crypto.randomUUID());
  // The test's fake Twilio listens on loopback; an app lists only Twilio's hosts.
  const extra = process.env.MAU_TEST_CONNECT_SRC ?? "";
  const csp = [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic' 'wasm-unsafe-eval'`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    `connect-src 'self' wss://*.twilio.com https://*.twilio.com ${extra}`.trim(),
    "object-src 'none'",
    "base-uri 'self'",
  ].join("; ");
  const headers = new Headers(request.headers);
  headers.set("x-nonce", nonce);
  headers.set("content-security-policy", csp);
  const response = NextResponse.next({ request: { headers } });
  response.headers.set("content-security-policy", csp);
  return response;
}

// Only the /csp page here; an app matches every page (and then renders them dynamically).
export const config = { matcher: ["/csp"] };

// Mints HS256 tokens for tests, with node:crypto only.
import { createHmac } from 'node:crypto';

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

export function signHS256(claims, secret) {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/** A user token for sub in tenant, valid for ttlSeconds. */
export function userToken(secret, { sub, tenant, store, ttlSeconds = 3600 }) {
  const now = Math.floor(Date.now() / 1000);
  return signHS256({ sub, tenant, ...(store ? { store } : {}), iat: now, exp: now + ttlSeconds }, secret);
}

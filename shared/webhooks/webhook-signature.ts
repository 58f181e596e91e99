import { createHmac, randomBytes } from 'node:crypto';
import { ClipmodError } from '../errors/index.ts';

// Standard Webhooks signing (https://www.standardwebhooks.com, the scheme Svix publishes): the
// signature is `v1,` + base64 HMAC-SHA256 over `${id}.${timestamp}.${body}` keyed with the bytes that
// follow `whsec_` (base64). Receivers verify with any Standard Webhooks library.

const secretPrefix = 'whsec_';
/** The spec allows 24 to 64 bytes; 32 is HMAC-SHA256's block-size-friendly sweet spot. */
const secretBytes = 32;
const minimumKeyBytes = 24;

export type WebhookHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

/** A fresh signing secret, `whsec_` + base64 of 32 random bytes. */
export function generateWebhookSecret(): string {
  return `${secretPrefix}${randomBytes(secretBytes).toString('base64')}`;
}

/** The HMAC key a `whsec_…` secret stands for. */
export function webhookSecretKey(secret: string): Buffer {
  const encoded = secret.startsWith(secretPrefix) ? secret.slice(secretPrefix.length) : secret;
  const key = Buffer.from(encoded, 'base64');
  // Buffer.from skips characters outside the alphabet; a stored secret that does that is corrupt.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || key.length < minimumKeyBytes) {
    throw new ClipmodError('internal', 'a stored webhook secret is not a valid whsec_ secret');
  }
  return key;
}

/** One `v1,<base64>` signature of a message. `body` is hashed as the exact bytes that are sent. */
export function signWebhook(
  secret: string,
  id: string,
  timestampSeconds: number,
  body: Buffer | string,
): string {
  const hmac = createHmac('sha256', webhookSecretKey(secret));
  hmac.update(`${id}.${timestampSeconds}.`, 'utf8');
  hmac.update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  return `v1,${hmac.digest('base64')}`;
}

/**
 * The three Standard Webhooks headers of one attempt. With several secrets (a rotation's overlap
 * window) the signature header carries one space-separated signature per secret, so a receiver that
 * holds either the old or the new secret verifies.
 */
export function webhookHeaders(message: {
  id: string;
  timestampSeconds: number;
  body: Buffer | string;
  secrets: readonly string[];
}): WebhookHeaders {
  if (message.secrets.length === 0) throw new ClipmodError('internal', 'a webhook endpoint has no secret');
  const timestampSeconds = Math.floor(message.timestampSeconds);
  return {
    'webhook-id': message.id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': message.secrets
      .map((secret) => signWebhook(secret, message.id, timestampSeconds, message.body))
      .join(' '),
  };
}

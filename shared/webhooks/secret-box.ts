import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { ClipmodError } from '../errors/index.ts';

// Webhook secrets cannot be stored as digests the way API keys are: the worker needs the key itself to
// compute an HMAC. With a sealing key (CLIPMOD_WEBHOOK_SECRET_KEY) each secret is stored AES-256-GCM
// encrypted and bound to its endpoint id, so a Redis dump, replica or backup alone reveals nothing and
// a ciphertext copied onto another endpoint does not open. Without one they are stored as they are.

const encryptedTag = 'aes256gcm';
const plainTag = 'plain';

export class SecretBox {
  readonly #key: Buffer | undefined;

  /** `sealingKey`: a random string of at least 32 characters, or undefined to store secrets plainly. */
  constructor(sealingKey: string | undefined) {
    // The setting is random text, not a password, so one SHA-256 is a sound way to size it to 256 bits.
    this.#key = sealingKey ? createHash('sha256').update(sealingKey, 'utf8').digest() : undefined;
  }

  get isEncrypting(): boolean {
    return this.#key !== undefined;
  }

  /** Seals `secret` for storage; `context` (the endpoint id) must be given again to open it. */
  seal(secret: string, context: string): string {
    if (this.#key === undefined) return `${plainTag}:${secret}`;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const sealed = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return [encryptedTag, iv, cipher.getAuthTag(), sealed]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
      .join(':');
  }

  /** Opens what seal() stored; plain values stay readable after a sealing key is introduced. */
  open(stored: string, context: string): string {
    const [tag, ...parts] = stored.split(':');
    if (tag === plainTag) return parts.join(':');
    if (tag !== encryptedTag || parts.length !== 3) throw unreadable('unknown format');
    if (this.#key === undefined) throw unreadable('CLIPMOD_WEBHOOK_SECRET_KEY is not set');
    const [iv, authTag, sealed] = parts.map((part) => Buffer.from(part, 'base64url')) as [
      Buffer,
      Buffer,
      Buffer,
    ];
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, iv);
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(authTag);
      return Buffer.concat([decipher.update(sealed), decipher.final()]).toString('utf8');
    } catch (error) {
      throw unreadable('wrong CLIPMOD_WEBHOOK_SECRET_KEY or tampered value', error);
    }
  }
}

function unreadable(why: string, cause?: unknown): ClipmodError {
  return new ClipmodError('internal', `a stored webhook secret cannot be opened: ${why}`, {
    ...(cause === undefined ? {} : { cause }),
  });
}

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FileChecksum } from './hub-client.ts';

/**
 * Hashes a file the way the hub names it: sha256 of the content for LFS files, and for small
 * files the git blob id, i.e. sha1 over `blob <size>\0` followed by the content.
 */
export async function hashFile(path: string, algorithm: FileChecksum['algorithm']): Promise<string> {
  const hash = createHash(algorithm === 'sha256' ? 'sha256' : 'sha1');
  if (algorithm === 'git-sha1') {
    const { size } = await stat(path);
    hash.update(`blob ${size}\0`);
  }
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** The hub quotes ETags and may mark them weak (`W/"…"`); the hash is what is inside. */
export function etagToChecksum(etag: string | null): FileChecksum | undefined {
  const value = etag?.replace(/^W\//, '').replace(/^"|"$/g, '').toLowerCase();
  if (value === undefined) return undefined;
  if (/^[0-9a-f]{64}$/.test(value)) return { algorithm: 'sha256', value };
  if (/^[0-9a-f]{40}$/.test(value)) return { algorithm: 'git-sha1', value };
  return undefined;
}

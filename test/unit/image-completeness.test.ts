import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { assertImageComplete } from '../../shared/clip/image-completeness.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { animation, solidImage } from '../helpers/images.ts';

async function progressiveJpeg(): Promise<Uint8Array> {
  const noise = Buffer.alloc(96 * 64 * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919) % 251;
  return new Uint8Array(
    await sharp(noise, { raw: { width: 96, height: 64, channels: 3 } })
      .jpeg({ progressive: true })
      .toBuffer(),
  );
}

function isRefused(bytes: Uint8Array, format: 'jpeg' | 'png' | 'webp' | 'gif'): boolean {
  try {
    assertImageComplete(bytes, format);
    return false;
  } catch (error) {
    expect(error).toBeInstanceOf(ClipmodError);
    expect((error as ClipmodError).code).toBe('corrupt_image');
    return true;
  }
}

describe('assertImageComplete', () => {
  const cases = [
    { format: 'jpeg' as const, make: progressiveJpeg },
    { format: 'png' as const, make: () => solidImage('png', 64, 48) },
    { format: 'webp' as const, make: () => solidImage('webp', 64, 48) },
    {
      format: 'gif' as const,
      make: () =>
        animation('gif', [
          [200, 0, 0],
          [0, 0, 200],
        ]),
    },
  ];

  for (const { format, make } of cases) {
    it(`accepts a whole ${format}, and one with data appended after its end`, async () => {
      const bytes = await make();
      expect(isRefused(bytes, format)).toBe(false);
      expect(isRefused(Buffer.concat([bytes, Buffer.from('PK\u0003\u0004 appended <html>')]), format)).toBe(
        false,
      );
    });

    it(`refuses a ${format} cut off anywhere in its data`, async () => {
      const bytes = await make();
      for (const keep of [0.3, 0.6, 0.9]) {
        expect(isRefused(bytes.subarray(0, Math.floor(bytes.length * keep)), format), `${keep}`).toBe(true);
      }
      expect(isRefused(bytes.subarray(0, bytes.length - 1), format)).toBe(true);
    });
  }
});

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

// RELIABILITY I-rows, version gate: the decoders every hostile image reaches. sharp below 0.35.3 is
// affected by GHSA-f88m-g3jw-g9cj. The library floors sit at or just below what this repository is
// tested with (sharp 0.35.5: libvips 8.18.7, libpng 1.6.58, libwebp 1.6.0), so a downgrade to an
// older prebuilt bundle fails here. README §Guarantees names the same floors.

const minimums: Record<string, string> = {
  sharp: '0.35.3',
  vips: '8.18.0',
  png: '1.6.50',
  webp: '1.6.0',
};

/** Numeric dotted comparison; a non-numeric part (mozjpeg's commit) makes the version unordered. */
function compareVersions(left: string, right: string): number {
  const a = left.split('.').map(Number);
  const b = right.split('.').map(Number);
  for (let index = 0; index < Math.max(a.length, b.length); index++) {
    const difference = (a[index] ?? 0) - (b[index] ?? 0);
    if (Number.isNaN(difference)) throw new Error(`cannot order versions ${left} and ${right}`);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}

describe('image decoder version gate', () => {
  it('orders dotted versions numerically', () => {
    expect(compareVersions('0.35.10', '0.35.3')).toBe(1);
    expect(compareVersions('8.18', '8.18.0')).toBe(0);
    expect(compareVersions('1.6.49', '1.6.50')).toBe(-1);
  });

  it('runs sharp and its bundled decoders at or above the documented minimums', () => {
    const versions = sharp.versions as Record<string, string | undefined>;
    const tooOld = Object.entries(minimums).filter(([name, minimum]) => {
      const installed = versions[name];
      return installed === undefined || compareVersions(installed, minimum) < 0;
    });
    expect(tooOld, JSON.stringify(versions)).toEqual([]);
  });
});

import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { animation, jpegWithOrientation, pngDeclaring } from '../helpers/images.ts';
import type { ServiceHarness } from '../helpers/service-harness.ts';
import { sized } from './chaos-deployment.ts';
import {
  blockedFormats,
  deflateBombPng,
  gifDeclaring,
  greenPng,
  redPng,
  redVariants,
  seedImages,
  truncations,
  webpDeclaring,
} from './hostile-image-inputs.ts';
import {
  type ImageOutcome,
  isAcceptableOutcome,
  moderateImage,
  startImageService,
} from './hostile-image-service.ts';

// RELIABILITY.md I2–I7 through the real service (API → queue → worker → `color` model): every hostile
// input ends in a verdict or a typed 4xx, never a 5xx, a crash or a hang.

let service: ServiceHarness;
let canary: Server;
let canaryUrl = '';
let canaryHits = 0;

beforeAll(async () => {
  service = await startImageService();
  canary = createServer((_req, res) => {
    canaryHits += 1;
    res.end('hit');
  });
  await new Promise<void>((resolve) => canary.listen(0, '127.0.0.1', resolve));
  canaryUrl = `http://127.0.0.1:${(canary.address() as { port: number }).port}`;
});

afterAll(async () => {
  canary?.close();
  await service?.stop();
});

function report(row: string, figures: Record<string, unknown>): void {
  process.stderr.write(`[chaos] ${row} ${JSON.stringify(figures)}\n`);
}

function expectAcceptable(name: string, result: ImageOutcome): void {
  expect(isAcceptableOutcome(result), `${name}: ${result.status} ${JSON.stringify(result.body)}`).toBe(true);
}

describe('I2: bombs and extreme geometry', () => {
  it('refuses declared and real decompression bombs before decoding, quickly and without memory growth', async () => {
    const bombs: Record<string, Uint8Array> = {
      'png-16000x16000-header': pngDeclaring(16_000, 16_000),
      'png-20000x20000-header': pngDeclaring(20_000, 20_000),
      'png-100000x100000-header': pngDeclaring(100_000, 100_000),
      'png-65535x1': pngDeclaring(65_535, 1),
      'gif-65535x65535-header': gifDeclaring(65_535, 65_535),
      'gif-65535x1-header': gifDeclaring(65_535, 1),
      'webp-16384x16384-header': webpDeclaring(16_384, 16_384),
      'png-7000x7000-deflate-bomb': deflateBombPng(7_000, 7_000),
    };
    const rssBefore = process.memoryUsage().rss;
    const times: Record<string, number> = {};
    for (const [name, bytes] of Object.entries(bombs)) {
      const result = await moderateImage(service, bytes);
      expect(result.outcome, name).toMatch(/^error:(image_too_large|corrupt_image)$/);
      expect([400, 413], name).toContain(result.status);
      times[name] = Math.round(result.ms);
    }
    const rssGrowthMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    // Refused from the header: no pixel buffer is ever allocated (measured single-digit ms each).
    expect(Math.max(...Object.values(times))).toBeLessThan(500);
    expect(rssGrowthMb).toBeLessThan(50);
    report('I2', { maxMs: Math.max(...Object.values(times)), rssGrowthMb: Math.round(rssGrowthMb) });
  });

  it('scores a within-limits deflate bomb (16 MP of zeros in 16 KB) instead of refusing or crashing', async () => {
    const bytes = deflateBombPng(4_000, 4_000);
    expect(bytes.length).toBeLessThan(64_000);
    const result = await moderateImage(service, bytes);
    expect(result.status).toBe(200);
    expect(result.outcome).toBe('allow');
    report('I2-within-limits', { bytes: bytes.length, ms: Math.round(result.ms) });
  });
});

describe('I3: truncated and corrupt files', () => {
  it('answers every truncation of every allowed format with a verdict or a typed error', async () => {
    const seeds = await seedImages();
    const counts: Record<string, Record<string, number>> = {};
    for (const [format, bytes] of Object.entries(seeds)) {
      counts[format] = {};
      for (const cut of truncations(bytes, sized(12, 60))) {
        const result = await moderateImage(service, cut);
        expectAcceptable(`${format} cut at ${cut.length}/${bytes.length}`, result);
        counts[format][result.outcome] = (counts[format][result.outcome] ?? 0) + 1;
      }
    }
    // failOn 'warning': a JPEG or PNG missing its end is refused, never scored half-grey.
    expect(Object.keys(counts.png!)).toEqual(['error:corrupt_image']);
    expect(Object.keys(counts.jpeg!).every((outcome) => outcome.startsWith('error:'))).toBe(true);
    report('I3', counts);
  });

  it('refuses a PNG with a bad CRC and one whose zlib stream is corrupt', async () => {
    const png = Buffer.from((await seedImages()).png);
    const badCrc = Buffer.from(png);
    badCrc[29] = badCrc[29]! ^ 0xff;
    const badZlib = Buffer.from(png);
    badZlib.fill(0xff, 45, 60);
    for (const bytes of [badCrc, badZlib]) {
      expect((await moderateImage(service, new Uint8Array(bytes))).outcome).toBe('error:corrupt_image');
    }
  });
});

describe('I4: animations', () => {
  it('flags a GIF whose third frame is the only red one, and bounds the work of a 1,000-frame GIF', async () => {
    const crafted = await animation('gif', [[20, 200, 30], [20, 30, 200], [230, 20, 20], [20, 200, 30]]); // biome-ignore format: one colour per frame
    const flagged = await moderateImage(service, crafted);
    expect(flagged.outcome).toBe('block');
    expect((flagged.body as any).verdict.labels[0].evidence.frame).toBe(2);
    const colours = Array.from({ length: 1_000 }, (_, i) => [20, 150 + (i % 50), 30] as const);
    const long = await moderateImage(service, await animation('gif', colours, 16, 12));
    expect(long.outcome).toBe('allow');
    expect(long.ms).toBeLessThan(2_000);
    report('I4', { thousandFrameMs: Math.round(long.ms) });
  });
});

describe('I5: geometry and colour', () => {
  it('blocks a red image in every colour form: CMYK, 16-bit, Display P3, alpha (even fully transparent)', async () => {
    for (const [name, bytes] of Object.entries(await redVariants())) {
      const result = await moderateImage(service, bytes);
      expect(result.outcome, `${name}: ${JSON.stringify(result.body)}`).toBe('block');
    }
  });

  it('scores EXIF orientations 1–8 without error', async () => {
    for (let orientation = 1; orientation <= 8; orientation++) {
      const result = await moderateImage(service, await jpegWithOrientation(orientation, 64, 40));
      expect(result.status, `orientation ${orientation}`).toBe(200);
      expect(['allow', 'block']).toContain(result.outcome);
    }
  });
});

describe('I6: the format block list', () => {
  it('refuses SVG (XXE too), PDF, TIFF, AVIF, HEIC, BMP, ICO, PSD, JXL, QOI and TGA without any fetch', async () => {
    for (const [name, bytes] of Object.entries(await blockedFormats(canaryUrl))) {
      const result = await moderateImage(service, bytes);
      expect(result.outcome, name).toBe('error:unsupported_format');
      expect(result.status, name).toBe(415);
    }
    expect(canaryHits).toBe(0);
  });
});

describe('I7: non-images and polyglots', () => {
  it('refuses empty bodies, HTML, JSON and ZIP', async () => {
    const zip = Buffer.from([
      0x50,
      0x4b,
      0x03,
      0x04,
      ...Buffer.alloc(26),
      0x50,
      0x4b,
      0x05,
      0x06,
      ...Buffer.alloc(18),
    ]);
    const inputs: Record<string, Uint8Array> = {
      html: Buffer.from('<!doctype html><script>alert(1)</script>'),
      json: Buffer.from('{"image":"no"}'),
      zip,
    };
    expect((await moderateImage(service, new Uint8Array())).outcome).toBe('error:empty_image');
    for (const [name, bytes] of Object.entries(inputs)) {
      expect((await moderateImage(service, bytes)).outcome, name).toBe('error:unsupported_format');
    }
  });

  it('scores polyglots by their decoded pixels and never echoes their payload', async () => {
    const script = '<script>alert(document.domain)</script>';
    const gifHtml = Buffer.concat([
      Buffer.from(await animation('gif', [[230, 20, 20]])),
      Buffer.from(script),
    ]);
    const gifJs = Buffer.from(gifHtml.toString('latin1').replace('GIF89a', 'GIF89a/*'), 'latin1');
    const zipTail = Buffer.from([0x50, 0x4b, 0x05, 0x06, ...Buffer.alloc(18)]);
    const pngZip = Buffer.concat([Buffer.from(await redPng()), Buffer.from('PK\x03\x04payload'), zipTail]);
    const greenHtml = Buffer.concat([Buffer.from(await greenPng()), Buffer.from(script)]);
    const cases: [string, Buffer, string][] = [
      ['gif+html', gifHtml, 'block'],
      ['png+zip', pngZip, 'block'],
      ['png+html', greenHtml, 'allow'],
    ];
    for (const [name, bytes, expected] of cases) {
      const result = await moderateImage(service, new Uint8Array(bytes));
      expect(result.outcome, name).toBe(expected);
      const stored = await (await service.request(`/v1/moderations/${result.body.id}`)).text();
      expect(stored).not.toContain('alert(');
      expect(stored).not.toContain('payload');
    }
    // A GIF header broken into a JS comment is no longer a GIF: refused, not guessed at.
    expectAcceptable('gif+js', await moderateImage(service, new Uint8Array(gifJs)));
  });
});

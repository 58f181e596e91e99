import { describe, expect, it } from 'vitest';
import { preprocessFrames, sampleFrameIndexes } from '../../shared/clip/image-frames.ts';
import { normalizeInto, preprocessImage, tensorLength } from '../../shared/clip/preprocess.ts';
import { OPENAI_CLIP_PREPROCESSOR } from '../../shared/clip/preprocessor-config.ts';
import { animation, type Rgb, solidImage } from '../helpers/images.ts';

const RED: Rgb = [255, 0, 0];
const GREEN: Rgb = [0, 255, 0];
const BLUE: Rgb = [0, 0, 255];
const YELLOW: Rgb = [255, 255, 0];
const WHITE: Rgb = [255, 255, 255];

/** The normalised value every pixel of a flat image of `colour` gets, per channel. */
function normalised(colour: Rgb): number[] {
  const out = new Float32Array(3);
  normalizeInto(new Uint8Array(colour), out, 0, OPENAI_CLIP_PREPROCESSOR);
  return [...out];
}

/** Channel values at one pixel of tensor `slot` in a [N,3,224,224] block. */
function sampleAt(pixelValues: Float32Array, slot: number, pixelIndex = 224 * 112 + 112): number[] {
  const plane = 224 * 224;
  const base = slot * tensorLength();
  return [0, 1, 2].map((c) => pixelValues[base + c * plane + pixelIndex]!);
}

describe('sampleFrameIndexes', () => {
  it('takes every frame when there are no more than maxFrames', () => {
    expect(sampleFrameIndexes(3, 8)).toEqual([0, 1, 2]);
    expect(sampleFrameIndexes(1)).toEqual([0]);
  });

  it('takes first, last and evenly spaced frames of a long animation', () => {
    const indexes = sampleFrameIndexes(1000, 8);
    expect(indexes).toHaveLength(8);
    expect(indexes[0]).toBe(0);
    expect(indexes[7]).toBe(999);
    expect(indexes).toEqual([0, 143, 285, 428, 571, 714, 856, 999]);
  });

  it('never repeats a frame when frames barely exceed maxFrames', () => {
    for (let frames = 9; frames < 40; frames++) {
      const indexes = sampleFrameIndexes(frames, 8);
      expect(new Set(indexes).size).toBe(8);
      expect(indexes.at(-1)).toBe(frames - 1);
    }
  });

  it('takes only the first frame when maxFrames is 1, and rejects nonsense counts', () => {
    expect(sampleFrameIndexes(50, 1)).toEqual([0]);
    expect(() => sampleFrameIndexes(0, 8)).toThrow(RangeError);
    expect(() => sampleFrameIndexes(5, 0)).toThrow(RangeError);
  });
});

describe('preprocessFrames', () => {
  it('preprocesses each frame of an animated GIF with that frame’s own colour', async () => {
    const gif = await animation('gif', [RED, GREEN, BLUE, YELLOW]);
    const { frameIndexes, pixelValues } = await preprocessFrames(gif);
    expect(frameIndexes).toEqual([0, 1, 2, 3]);
    expect(pixelValues.length).toBe(4 * tensorLength());
    [RED, GREEN, BLUE, YELLOW].forEach((colour, slot) => {
      expect(sampleAt(pixelValues, slot)).toEqual(normalised(colour));
    });
  });

  it('finds content that only appears in a late frame when sampling', async () => {
    // Alternating, because the GIF encoder merges identical consecutive frames into one.
    const colours = [WHITE, GREEN, WHITE, GREEN, RED];
    const gif = await animation('gif', colours);
    const { frameIndexes, pixelValues } = await preprocessFrames(gif, { maxFrames: 3 });
    expect(frameIndexes).toEqual([0, 2, 4]);
    expect(sampleAt(pixelValues, 2)).toEqual(normalised(RED));
    expect(sampleAt(pixelValues, 0)).toEqual(normalised(WHITE));
  });

  it('reads frames of an animated WebP in both modes', async () => {
    const webp = await animation('webp', [BLUE, GREEN, RED]);
    for (const mode of ['exact', 'fast'] as const) {
      const { frameIndexes, pixelValues } = await preprocessFrames(webp, { mode });
      expect(frameIndexes).toEqual([0, 1, 2]);
      expect(sampleAt(pixelValues, 2)).toEqual(normalised(RED));
    }
  });

  it('refuses a frame index past the last frame as bad_request', async () => {
    const gif = await animation('gif', [RED, GREEN]);
    await expect(preprocessImage(gif, { page: 2 })).rejects.toMatchObject({ code: 'bad_request' });
    expect(sampleAt(await preprocessImage(gif, { page: 1 }), 0)).toEqual(normalised(GREEN));
  });

  it('gives a single frame for a still image', async () => {
    const { frameIndexes, pixelValues } = await preprocessFrames(await solidImage('png', 300, 300, GREEN));
    expect(frameIndexes).toEqual([0]);
    expect(sampleAt(pixelValues, 0)).toEqual(normalised(GREEN));
  });
});

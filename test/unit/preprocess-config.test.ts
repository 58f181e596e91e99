import { describe, expect, it } from 'vitest';
import { OPENAI_CLIP_PREPROCESSOR, parsePreprocessorConfig } from '../../shared/clip/preprocessor-config.ts';
import { ClipmodError } from '../../shared/errors/index.ts';

function parseError(json: unknown): ClipmodError {
  try {
    parsePreprocessorConfig(json);
  } catch (error) {
    expect(error).toBeInstanceOf(ClipmodError);
    return error as ClipmodError;
  }
  throw new Error('expected parsePreprocessorConfig to throw');
}

describe('parsePreprocessorConfig', () => {
  it('gives the OpenAI CLIP defaults: shortest edge 224, crop 224, OpenAI mean/std, rescale 1/255', () => {
    expect(OPENAI_CLIP_PREPROCESSOR).toEqual({
      resize: { kind: 'shortest-edge', shortestEdge: 224 },
      crop: { width: 224, height: 224 },
      output: { width: 224, height: 224 },
      rescaleFactor: 1 / 255,
      normalize: { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] },
    });
    expect(Object.isFrozen(OPENAI_CLIP_PREPROCESSOR)).toBe(true);
  });

  it('reads the legacy feature-extractor form with integer size and crop_size', () => {
    const config = parsePreprocessorConfig({
      feature_extractor_type: 'CLIPFeatureExtractor',
      size: 336,
      crop_size: 336,
      resample: 3,
    });
    expect(config.resize).toEqual({ kind: 'shortest-edge', shortestEdge: 336 });
    expect(config.output).toEqual({ width: 336, height: 336 });
  });

  it('reads an exact height/width resize without a centre crop', () => {
    const config = parsePreprocessorConfig({
      size: { height: 256, width: 192 },
      do_center_crop: false,
      do_normalize: false,
      do_rescale: false,
    });
    expect(config.resize).toEqual({ kind: 'exact', width: 192, height: 256 });
    expect(config.crop).toBeNull();
    expect(config.output).toEqual({ width: 192, height: 256 });
    expect([config.rescaleFactor, config.normalize]).toEqual([null, null]);
  });

  it('uses the mean, std and rescale factor from the file', () => {
    const config = parsePreprocessorConfig({
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
      rescale_factor: 0.5,
    });
    expect(config.normalize).toEqual({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    expect(config.rescaleFactor).toBe(0.5);
  });

  it('refuses resample modes other than bicubic, naming the field', () => {
    const error = parseError({ resample: 2 });
    expect(error.code).toBe('model_invalid');
    expect(error.details).toEqual({ field: 'resample' });
  });

  it('refuses a crop larger than the resized image', () => {
    expect(parseError({ size: { shortest_edge: 224 }, crop_size: 256 }).message).toContain('crop_size');
  });

  it('refuses shapes that would vary per image and switches it cannot honour', () => {
    expect(parseError({ do_center_crop: false }).code).toBe('model_invalid');
    expect(parseError({ do_resize: false }).details).toEqual({ field: 'do_resize' });
    expect(parseError({ do_convert_rgb: false }).details).toEqual({ field: 'do_convert_rgb' });
  });

  it('refuses malformed values such as a two-element mean', () => {
    expect(parseError({ image_mean: [0.5, 0.5] }).details).toEqual({ field: 'image_mean' });
    expect(parseError('not an object').code).toBe('model_invalid');
  });
});

// Hugging Face `preprocessor_config.json` (CLIPImageProcessor) parsed into the typed, frozen settings
// that preprocessing runs on. Only the fields CLIP uses are read; unknown fields are ignored.
import { z } from 'zod';
import { ClipmodError } from '../errors/index.ts';

export type ResizeSpec =
  /** Scale so the shorter side equals `shortestEdge`, keeping the aspect ratio (the CLIP default). */
  | { kind: 'shortest-edge'; shortestEdge: number }
  /** Scale to exactly `width`×`height`, ignoring the aspect ratio. */
  | { kind: 'exact'; width: number; height: number };

export type PreprocessorConfig = Readonly<{
  resize: ResizeSpec;
  /** `null` when `do_center_crop` is false (only allowed with an exact resize). */
  crop: Readonly<{ width: number; height: number }> | null;
  /** Width and height of every tensor this config produces. */
  output: Readonly<{ width: number; height: number }>;
  /** Multiplier from uint8 to [0,1]; `null` when `do_rescale` is false. */
  rescaleFactor: number | null;
  /** Per-channel mean and std (RGB); `null` when `do_normalize` is false. */
  normalize: Readonly<{
    mean: readonly [number, number, number];
    std: readonly [number, number, number];
  }> | null;
}>;

const positiveInt = z.number().int().positive().max(4096);
const sideSchema = z.union([
  positiveInt,
  z.object({ shortest_edge: positiveInt }),
  z.object({ height: positiveInt, width: positiveInt }),
]);
const triple = z.tuple([z.number(), z.number(), z.number()]);

const rawSchema = z.object({
  // Without a resize the tensor shape would follow each input image; the models need a fixed one.
  do_resize: z.literal(true, { error: 'do_resize: false is not supported' }).default(true),
  size: sideSchema.default({ shortest_edge: 224 }),
  // Pillow codes: only 3 (BICUBIC) is implemented; every released CLIP checkpoint uses it.
  resample: z.literal(3, { error: 'only resample 3 (bicubic) is supported' }).default(3),
  do_center_crop: z.boolean().default(true),
  crop_size: sideSchema.default(224),
  do_rescale: z.boolean().default(true),
  rescale_factor: z
    .number()
    .positive()
    .default(1 / 255),
  do_normalize: z.boolean().default(true),
  image_mean: triple.default([0.48145466, 0.4578275, 0.40821073]),
  image_std: triple.default([0.26862954, 0.26130258, 0.27577711]),
  // RGB conversion always happens; a config that turns it off cannot be honoured on 3-channel models.
  do_convert_rgb: z.literal(true, { error: 'do_convert_rgb: false is not supported' }).optional(),
});

type RawConfig = z.infer<typeof rawSchema>;

function toResize(raw: RawConfig): ResizeSpec {
  const size = raw.size;
  if (typeof size === 'number') return { kind: 'shortest-edge', shortestEdge: size };
  if ('shortest_edge' in size) return { kind: 'shortest-edge', shortestEdge: size.shortest_edge };
  return { kind: 'exact', width: size.width, height: size.height };
}

function toCrop(raw: RawConfig): { width: number; height: number } | null {
  if (!raw.do_center_crop) return null;
  const size = raw.crop_size;
  if (typeof size === 'number') return { width: size, height: size };
  if ('shortest_edge' in size) return { width: size.shortest_edge, height: size.shortest_edge };
  return { width: size.width, height: size.height };
}

/** The fixed output size, or a reason why the config cannot give one. */
function outputSize(resize: ResizeSpec, crop: { width: number; height: number } | null) {
  if (crop === null) {
    if (resize.kind === 'exact') return { width: resize.width, height: resize.height };
    return 'do_center_crop: false with size.shortest_edge gives a tensor shape that varies per image';
  }
  const width = resize.kind === 'exact' ? resize.width : resize.shortestEdge;
  const height = resize.kind === 'exact' ? resize.height : resize.shortestEdge;
  // A crop larger than the resized image would need padding, which CLIP configs never ask for.
  if (crop.width > width || crop.height > height) return 'crop_size is larger than the resized image';
  return crop;
}

/** Parses the JSON object of a `preprocessor_config.json`; throws `model_invalid` naming the bad field. */
export function parsePreprocessorConfig(json: unknown): PreprocessorConfig {
  const parsed = rawSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') ?? '';
    throw new ClipmodError(
      'model_invalid',
      `preprocessor_config.json: ${field} ${issue?.message ?? 'invalid'}`,
      {
        details: { field },
      },
    );
  }
  const raw = parsed.data;
  const resize = toResize(raw);
  const crop = toCrop(raw);
  const output = outputSize(resize, crop);
  if (typeof output === 'string') {
    throw new ClipmodError('model_invalid', `preprocessor_config.json: ${output}`, {
      details: { field: 'crop_size' },
    });
  }
  return Object.freeze({
    resize: Object.freeze(resize),
    crop: crop === null ? null : Object.freeze(crop),
    output: Object.freeze({ width: output.width, height: output.height }),
    rescaleFactor: raw.do_rescale ? raw.rescale_factor : null,
    normalize: raw.do_normalize ? Object.freeze({ mean: raw.image_mean, std: raw.image_std }) : null,
  });
}

/** openai/clip-vit-base-patch32's preprocessor_config.json (also B/16 and L/14), as Hugging Face ships it. */
export const OPENAI_CLIP_PREPROCESSOR_JSON = Object.freeze({
  crop_size: { height: 224, width: 224 },
  do_center_crop: true,
  do_convert_rgb: true,
  do_normalize: true,
  do_rescale: true,
  do_resize: true,
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_processor_type: 'CLIPImageProcessor',
  image_std: [0.26862954, 0.26130258, 0.27577711],
  resample: 3,
  rescale_factor: 0.00392156862745098,
  size: { shortest_edge: 224 },
});

/** Shortest edge 224, centre crop 224, OpenAI mean/std: the default when a folder has no config. */
export const OPENAI_CLIP_PREPROCESSOR: PreprocessorConfig = parsePreprocessorConfig(
  OPENAI_CLIP_PREPROCESSOR_JSON,
);

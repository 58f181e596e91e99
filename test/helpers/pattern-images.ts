// Photo-like test images with a layout (coloured shapes on a gradient), and the edits a re-uploader
// makes to dodge an exact-match filter: resize, JPEG re-encode, crop and mirror. For the `texture`
// model, whose embeddings keep such variants near while different layouts stay apart.
import sharp, { type Sharp } from 'sharp';

/** A 320×240 PNG: shapes placed and coloured from `seed`, so each seed is a different picture. */
export async function patternImage(seed: number): Promise<Uint8Array> {
  const random = seeded(seed);
  const colour = () => `rgb(${pick(random)},${pick(random)},${pick(random)})`;
  const shapes = Array.from({ length: 6 }, () => {
    const [x, y, size] = [random() * 320, random() * 240, 30 + random() * 90];
    return random() < 0.5
      ? `<circle cx="${x}" cy="${y}" r="${size / 2}" fill="${colour()}"/>`
      : `<rect x="${x - size / 2}" y="${y - size / 2}" width="${size}" height="${size * 0.7}" fill="${colour()}"/>`;
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240">
    <defs><linearGradient id="g"><stop offset="0" stop-color="${colour()}"/><stop offset="1" stop-color="${colour()}"/></linearGradient></defs>
    <rect width="320" height="240" fill="url(#g)"/>${shapes.join('')}</svg>`;
  return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
}

export type ImageVariant = 'resized' | 'jpeg-q60' | 'cropped-90' | 'mirrored';
export const imageVariants: readonly ImageVariant[] = ['resized', 'jpeg-q60', 'cropped-90', 'mirrored'];

/** The image edited as `variant` says: half size, JPEG quality 60, central 90 % crop, or mirrored. */
export async function variantOf(image: Uint8Array, variant: ImageVariant): Promise<Uint8Array> {
  const input = sharp(image);
  const { width = 0, height = 0 } = await input.metadata();
  if (variant === 'resized') return bytes(input.resize(Math.round(width / 2), Math.round(height / 2)).png());
  if (variant === 'jpeg-q60') return bytes(input.jpeg({ quality: 60 }));
  if (variant === 'mirrored') return bytes(input.flop().png());
  const [cropWidth, cropHeight] = [Math.round(width * 0.9), Math.round(height * 0.9)];
  const left = Math.floor((width - cropWidth) / 2);
  const top = Math.floor((height - cropHeight) / 2);
  return bytes(input.extract({ left, top, width: cropWidth, height: cropHeight }).png());
}

async function bytes(image: Sharp): Promise<Uint8Array> {
  return new Uint8Array(await image.toBuffer());
}

const pick = (random: () => number) => Math.floor(random() * 256);

function seeded(seed: number): () => number {
  let state = (seed * 2654435761) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), state | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

// Base64 images inside JSON bodies. Node's decoder silently skips characters it does not know, so
// the text is validated first: a typo must be a 400, not a quietly different image.

import { ClipmodError } from '../../../shared/errors/index.ts';
import { limitExceeded } from './body-stream.ts';
import { imageLimit } from './image-collector.ts';

/** `data:[<media type>][;params];base64,` — the media type is ignored: magic bytes decide. */
const DATA_URL_HEADER = /^data:[^,]{0,200},/i;
/** Line breaks and spaces, as `base64` tools wrap their output. */
const WHITESPACE = /[\t\n\r ]+/g;
/** The standard and the URL-safe alphabet; Buffer's `base64` decoder reads both. */
const OUTSIDE_ALPHABETS = /[^A-Za-z0-9+/_-]/;

function invalid(field: string, message: string): ClipmodError {
  return new ClipmodError('bad_request', `${field} is not valid base64: ${message}`, { details: { field } });
}

function stripDataUrl(text: string, field: string): string {
  if (!/^data:/i.test(text)) return text;
  const header = DATA_URL_HEADER.exec(text)?.[0];
  if (header === undefined) throw invalid(field, 'the data URL has no comma after its header.');
  if (!/;base64,$/i.test(header)) throw invalid(field, 'only base64 data URLs are accepted (";base64,").');
  return text.slice(header.length);
}

function trailingPadding(text: string): number {
  let count = 0;
  while (count < text.length && text[text.length - 1 - count] === '=') count += 1;
  return count;
}

/**
 * Decodes standard or URL-safe base64, padded or not, bare or as a data URL. Refuses a decoded size
 * over `maxImageBytes` before decoding anything.
 */
export function decodeBase64Image(text: string, maxImageBytes: number, field = 'image.base64'): Buffer {
  const compact = stripDataUrl(text, field).replace(WHITESPACE, '');
  const padding = trailingPadding(compact);
  const digits = compact.length - padding;
  const outside = OUTSIDE_ALPHABETS.exec(compact.slice(0, digits));
  if (outside !== null) throw invalid(field, `unexpected character ${JSON.stringify(outside[0])}.`);
  if (padding > 2 || (padding > 0 && compact.length % 4 !== 0)) throw invalid(field, 'wrong padding.');
  if (digits % 4 === 1) throw invalid(field, 'the text is cut short (length leaves a lone character).');
  const sizeBytes = Math.floor((digits * 3) / 4);
  if (sizeBytes === 0) throw new ClipmodError('empty_image', 'Image is empty (0 bytes).');
  if (sizeBytes > maxImageBytes) throw limitExceeded(imageLimit(maxImageBytes));
  return Buffer.from(compact, 'base64');
}

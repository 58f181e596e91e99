// JSON bodies: {"image": {"base64": "…"} | {"url": "https://…"}, …other fields}. The body is read under
// the body limit, the image decoded or fetched under the image limit, and the other fields are
// bounded on their own so a small URL submission cannot carry megabytes of metadata.

import type { Request } from 'express';
import type { ImageFormat } from '../../../shared/clip/index.ts';
import { ClipmodError } from '../../../shared/errors/index.ts';
import { decodeBase64Image } from './base64-image.ts';
import { type BodyLimit, pumpBody } from './body-stream.ts';
import { type CheckedImage, checkImage } from './image-collector.ts';
import { locateJsonSyntaxError } from './json-syntax-error.ts';

export type JsonLimits = {
  body: BodyLimit;
  maxImageBytes: number;
  maxFieldsBytes: number;
  formats: readonly ImageFormat[];
  fetchImage(url: string): Promise<Buffer>;
};

export type JsonImage = CheckedImage & { source: 'base64' | 'url' };

export type JsonContent = { image: JsonImage | undefined; fields: Record<string, unknown> };

export async function readJsonBody(req: Request, limits: JsonLimits): Promise<JsonContent> {
  const chunks: Buffer[] = [];
  await pumpBody(req, limits.body, (chunk) => chunks.push(chunk)).finished;
  const { image, ...fields } = parseJsonObject(Buffer.concat(chunks).toString('utf8'));
  const fieldsBytes = Buffer.byteLength(JSON.stringify(fields));
  if (fieldsBytes > limits.maxFieldsBytes) {
    throw new ClipmodError(
      'payload_too_large',
      `Fields besides image exceed ${limits.maxFieldsBytes} bytes.`,
      { details: { limit: limits.maxFieldsBytes, sizeBytes: fieldsBytes } },
    );
  }
  if (image === undefined) return { image: undefined, fields };
  return { image: await readImageReference(image, limits), fields };
}

function parseJsonObject(text: string): Record<string, unknown> {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    const where = locateJsonSyntaxError(text);
    const message =
      where === undefined
        ? 'Request body is not valid JSON.'
        : `Request body is not valid JSON: ${where.problem} at line ${where.line}, column ${where.column}.`;
    const details =
      where === undefined ? {} : { line: where.line, column: where.column, position: where.position };
    throw new ClipmodError('bad_request', message, { details, cause: error });
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    const kind = document === null ? 'null' : Array.isArray(document) ? 'an array' : `a ${typeof document}`;
    throw new ClipmodError('bad_request', `Request body must be a JSON object, not ${kind}.`);
  }
  return document as Record<string, unknown>;
}

type ImageSpec = { base64: string } | { url: string };

function imageSpec(value: unknown): ImageSpec {
  const spec = typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
  const keys = spec === undefined ? [] : Object.keys(spec);
  const [key] = keys;
  const text = spec === undefined || key === undefined ? undefined : (spec as Record<string, unknown>)[key];
  if (keys.length === 1 && (key === 'base64' || key === 'url') && typeof text === 'string') {
    return key === 'base64' ? { base64: text } : { url: text };
  }
  throw new ClipmodError('bad_request', 'image must be {"base64": "<data>"} or {"url": "https://…"}.', {
    details: { field: 'image' },
  });
}

export type ImageReferenceLimits = Pick<JsonLimits, 'maxImageBytes' | 'formats' | 'fetchImage'>;

/**
 * `{"base64": …}` or `{"url": …}`. URL images go through the caller's fetchImage, so the SSRF policy
 * lives in one place; a `data:` URL is decoded here instead, as it names no host to fetch from.
 */
export async function readImageReference(value: unknown, limits: ImageReferenceLimits): Promise<JsonImage> {
  const spec = imageSpec(value);
  if ('base64' in spec || /^data:/i.test(spec.url)) {
    const [text, field] = 'base64' in spec ? [spec.base64, 'image.base64'] : [spec.url, 'image.url'];
    const image = decodeBase64Image(text, limits.maxImageBytes, field);
    return { ...checkImage(image, limits.maxImageBytes, limits.formats), source: 'base64' };
  }
  const image = await limits.fetchImage(spec.url);
  return { ...checkImage(image, limits.maxImageBytes, limits.formats), source: 'url' };
}

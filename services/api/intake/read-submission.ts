// The one way a route turns a request into image bytes plus fields. The Content-Type picks the
// envelope (multipart form, raw image body, JSON with base64 or a URL); the image's format is then
// decided by its magic bytes alone, and every limit is enforced while the body streams in.

import type { Request } from 'express';
import { DEFAULT_IMAGE_LIMITS, type ImageFormat } from '../../../shared/clip/index.ts';
import { ClipmodError } from '../../../shared/errors/index.ts';
import { type BodyLimit, pumpBody, refuseDeclaredLength, stopReading } from './body-stream.ts';
import { queryFields } from './form-fields.ts';
import { createImageCollector, imageLimit } from './image-collector.ts';
import { type JsonImage, readJsonBody, readImageReference as readReference } from './read-json-body.ts';
import { readMultipart } from './read-multipart.ts';

export type IntakeOptions = {
  /** Image bytes after base64 decoding or download. */
  maxImageBytes: number;
  /** The whole request body; JSON with base64 needs about 4/3 of the image plus the fields. */
  maxBodyBytes: number;
  /** JSON fields besides `image`, or multipart text fields, together. Default 64 KiB. */
  maxFieldsBytes?: number;
  /** Formats accepted, by magic bytes. Default: the probe's default allow-list. */
  formats?: readonly ImageFormat[];
  /** Fetches a `{"url"}` image: the caller's SSRF-safe client; its ClipmodErrors pass through. */
  fetchImage(url: string): Promise<Buffer>;
};

export type SubmissionSource = 'multipart' | 'raw' | 'base64' | 'url';

export type Submission = {
  image: Buffer;
  /** By magic bytes; the route still probes dimensions and limits before decoding. */
  format: ImageFormat;
  source: SubmissionSource;
  /**
   * The other fields: JSON members as parsed; multipart text fields or, for a raw body, the query
   * string, as strings unless the text is a JSON object or array (then parsed). A repeated name
   * gives an array.
   */
  fields: Record<string, unknown>;
};

export type OptionalSubmission =
  | Submission
  | { image?: undefined; format?: undefined; source?: undefined; fields: Record<string, unknown> };

const DEFAULT_MAX_FIELDS_BYTES = 64 * 1024;
const ACCEPTED_TYPES = ['multipart/form-data', 'application/json', 'image/*', 'application/octet-stream'];

type Envelope = 'multipart' | 'json' | 'raw';

function envelopeOf(req: Request): Envelope {
  const contentType = req.headers['content-type'] ?? '';
  const mediaType = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  if (mediaType === 'multipart/form-data') return 'multipart';
  if (mediaType === 'application/json') return 'json';
  if (mediaType.startsWith('image/') || mediaType === 'application/octet-stream') return 'raw';
  stopReading(req);
  const declared = mediaType === '' ? 'no Content-Type' : `Content-Type ${mediaType}`;
  throw new ClipmodError(
    'unsupported_format',
    `Cannot read ${declared}; send one of ${ACCEPTED_TYPES.join(', ')}.`,
    { details: { contentType: mediaType, accepted: ACCEPTED_TYPES } },
  );
}

/** Reads the submission; the image may be absent (e.g. POST /v1/embeddings with {"text": …}). */
export async function readOptionalSubmission(
  req: Request,
  options: IntakeOptions,
): Promise<OptionalSubmission> {
  const envelope = envelopeOf(req);
  const formats = options.formats ?? DEFAULT_IMAGE_LIMITS.formats;
  if (envelope === 'raw') return readRawBody(req, options, formats);
  const body: BodyLimit = {
    maxBytes: options.maxBodyBytes,
    code: 'payload_too_large',
    subject: 'request body',
  };
  refuseDeclaredLength(req, body);
  const limits = {
    body,
    maxImageBytes: options.maxImageBytes,
    maxFieldsBytes: options.maxFieldsBytes ?? DEFAULT_MAX_FIELDS_BYTES,
    formats,
  };
  if (envelope === 'json') {
    const { image, fields } = await readJsonBody(req, { ...limits, fetchImage: options.fetchImage });
    return image === undefined ? { fields } : { ...image, fields };
  }
  const { image, fields } = await readMultipart(req, limits);
  return image === undefined ? { fields } : { ...image, source: 'multipart', fields };
}

/** Reads the submission and requires an image. */
export async function readSubmission(req: Request, options: IntakeOptions): Promise<Submission> {
  const submission = await readOptionalSubmission(req, options);
  if (submission.image !== undefined) return submission;
  throw new ClipmodError(
    'bad_request',
    'No image: send a multipart field "image", a raw image body, or JSON {"image": {"base64"|"url": …}}.',
    { details: { field: 'image' } },
  );
}

/** The body is the image: it is bounded by the smaller of the two limits. */
async function readRawBody(
  req: Request,
  options: IntakeOptions,
  formats: readonly ImageFormat[],
): Promise<Submission> {
  const limit: BodyLimit =
    options.maxImageBytes <= options.maxBodyBytes
      ? imageLimit(options.maxImageBytes)
      : { maxBytes: options.maxBodyBytes, code: 'payload_too_large', subject: 'request body' };
  refuseDeclaredLength(req, limit);
  const collector = createImageCollector(options.maxImageBytes, formats);
  await pumpBody(req, limit, (chunk) => collector.push(chunk)).finished;
  return { ...collector.finish(), source: 'raw', fields: queryFields(req.query) };
}

/**
 * One image reference, `{"base64": …}` or `{"url": …}` (a `data:` URL is decoded, not fetched), read
 * under the same limits: for envelopes that carry images elsewhere, such as OpenAI's `image_url`.
 */
export function readImageReference(reference: unknown, options: IntakeOptions): Promise<JsonImage> {
  const formats = options.formats ?? DEFAULT_IMAGE_LIMITS.formats;
  return readReference(reference, {
    maxImageBytes: options.maxImageBytes,
    formats,
    fetchImage: options.fetchImage,
  });
}

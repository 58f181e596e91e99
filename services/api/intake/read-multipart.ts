// multipart/form-data: exactly one file part named `image`, plus a bounded number of text fields.
// busboy parses; every byte of the body is counted before it reaches busboy, and the image part is
// collected under its own limit and sniffed as it streams.

import type { Readable } from 'node:stream';
import busboy from 'busboy';
import type { Request } from 'express';
import type { ImageFormat } from '../../../shared/clip/index.ts';
import { ClipmodError } from '../../../shared/errors/index.ts';
import { type BodyLimit, limitExceeded, pumpBody, stopReading } from './body-stream.ts';
import { createFieldBag, formFieldValue } from './form-fields.ts';
import {
  type CheckedImage,
  createImageCollector,
  type ImageCollector,
  imageLimit,
} from './image-collector.ts';

/** More than any route reads; a form with hundreds of fields is an attack, not a request. */
const MAX_FORM_FIELDS = 32;
const MAX_FIELD_NAME_BYTES = 100;

export type MultipartLimits = {
  body: BodyLimit;
  maxImageBytes: number;
  maxFieldsBytes: number;
  formats: readonly ImageFormat[];
};

export type MultipartContent = { image: CheckedImage | undefined; fields: Record<string, unknown> };

function tooManyFields(): ClipmodError {
  return new ClipmodError('payload_too_large', `Form has more than ${MAX_FORM_FIELDS} fields.`, {
    details: { limit: MAX_FORM_FIELDS },
  });
}

function fieldTooLarge(name: string, limit: number): ClipmodError {
  return new ClipmodError('payload_too_large', `Form fields exceed the limit of ${limit} bytes.`, {
    details: { field: name, limit },
  });
}

function openParser(req: Request, limits: MultipartLimits): busboy.Busboy {
  try {
    return busboy({
      headers: req.headers,
      limits: {
        // Two, so that a second file is seen (and refused) rather than silently dropped.
        files: 2,
        fields: MAX_FORM_FIELDS,
        parts: MAX_FORM_FIELDS + 2,
        fieldSize: limits.maxFieldsBytes,
        fieldNameSize: MAX_FIELD_NAME_BYTES,
        fileSize: limits.maxImageBytes,
      },
    });
  } catch (error) {
    stopReading(req);
    throw new ClipmodError(
      'bad_request',
      `multipart/form-data body cannot be parsed: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

export function readMultipart(req: Request, limits: MultipartLimits): Promise<MultipartContent> {
  const parser = openParser(req, limits);
  const form = createFormCollector(limits);
  return new Promise<MultipartContent>((resolve, reject) => {
    let isSettled = false;
    const fail = (error: unknown) => {
      if (isSettled) return;
      isSettled = true;
      pump.abort(error);
      parser.destroy();
      reject(error);
    };
    // busboy consumes synchronously while the image stream flows, so its own buffer never grows.
    const pump = pumpBody(req, limits.body, (chunk) => parser.write(chunk));
    pump.finished.then(() => parser.end(), fail);
    parser.on('file', (name, stream) => form.addFile(name, stream, fail));
    parser.on('field', (name, value, info) => {
      const refusal = form.addField(name, value, info);
      if (refusal !== undefined) fail(refusal);
    });
    parser.on('fieldsLimit', () => fail(tooManyFields()));
    parser.on('partsLimit', () => fail(tooManyFields()));
    parser.on('error', (error: Error) => fail(malformed(error)));
    parser.on('finish', () => {
      if (isSettled) return;
      try {
        const content = form.finish();
        isSettled = true;
        resolve(content);
      } catch (error) {
        fail(error);
      }
    });
  });
}

type FormCollector = {
  addFile(name: string, stream: Readable, fail: (error: unknown) => void): void;
  /** The reason to refuse the field, if any. */
  addField(name: string, value: string, info: busboy.FieldInfo): ClipmodError | undefined;
  finish(): MultipartContent;
};

function createFormCollector(limits: MultipartLimits): FormCollector {
  const bag = createFieldBag();
  let fieldsBytes = 0;
  let collector: ImageCollector | undefined;
  return {
    addFile(name, stream, fail) {
      // First: refusing destroys the parser, which destroys this stream with an error.
      stream.on('error', (error: Error) => fail(malformed(error)));
      const refusal = refuseFile(name, collector !== undefined);
      if (refusal !== undefined) return fail(refusal);
      const image = createImageCollector(limits.maxImageBytes, limits.formats);
      collector = image;
      stream.on('data', (chunk: Buffer) => {
        try {
          image.push(chunk);
        } catch (error) {
          fail(error);
        }
      });
      // busboy cuts the part at fileSize; the collector alone would then see a complete-looking image.
      stream.on('limit', () => fail(limitExceeded(imageLimit(limits.maxImageBytes))));
    },
    addField(name, value, info) {
      fieldsBytes += Buffer.byteLength(name) + Buffer.byteLength(value);
      if (info.nameTruncated || info.valueTruncated || fieldsBytes > limits.maxFieldsBytes) {
        return fieldTooLarge(name, limits.maxFieldsBytes);
      }
      if (name === 'image') return imageNotAFile();
      bag.add(name, formFieldValue(value));
      return undefined;
    },
    finish: () => ({ image: collector?.finish(), fields: bag.toRecord() }),
  };
}

function refuseFile(name: string, hasImage: boolean): ClipmodError | undefined {
  if (name !== 'image') {
    return new ClipmodError(
      'bad_request',
      `Unexpected file part "${name}"; send the image in the field "image".`,
      { details: { field: name } },
    );
  }
  if (hasImage) {
    return new ClipmodError('bad_request', 'More than one "image" part; send exactly one image.', {
      details: { field: 'image' },
    });
  }
  return undefined;
}

function imageNotAFile(): ClipmodError {
  return new ClipmodError(
    'bad_request',
    'Field "image" must be a file part (with a filename or a content type).',
    { details: { field: 'image' } },
  );
}

function malformed(error: Error): ClipmodError {
  return new ClipmodError('bad_request', `multipart/form-data body is malformed: ${error.message}`, {
    cause: error,
  });
}

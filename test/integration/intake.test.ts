import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../services/api/app.ts';
import {
  type IntakeOptions,
  readOptionalSubmission,
  readSubmission,
} from '../../services/api/intake/index.ts';
import { createLogger } from '../../shared/logger/index.ts';
import { Registry } from '../../shared/metrics/index.ts';
import { imageFetchDefaults, parseCidrList, safeFetch } from '../../shared/net/index.ts';

// Intake through the real express app and real HTTP on 127.0.0.1: a tiny router answers what
// readSubmission made of each request, and a loopback server plays the customer's image host.

const KIB = 1024;
const MIB = 1024 * KIB;
const SMALL_IMAGE_BYTES = 64 * KIB;
const ACCEPTED_TYPES = ['multipart/form-data', 'application/json', 'image/*', 'application/octet-stream'];

type Observation = { bytesReadAtError?: number; bytesReadAtClose?: number };

let apiServer: http.Server;
let imageServer: http.Server;
let apiUrl = '';
let imageUrl = '';
let imageRequests = 0;
let observed: Observation = {};
let images: Record<'png' | 'jpeg' | 'gif', Buffer>;

function fetchImageVia(allowList: string): IntakeOptions['fetchImage'] {
  const ranges = parseCidrList(allowList);
  return async (url) =>
    (await safeFetch(url, { ...imageFetchDefaults, allowList: ranges, maxBytes: MIB })).body;
}

const loopbackOnly = fetchImageVia('127.0.0.0/8');
const routes: Record<string, IntakeOptions> = {
  '/submit': { maxImageBytes: MIB, maxBodyBytes: 1.5 * MIB, fetchImage: loopbackOnly },
  '/small': { maxImageBytes: SMALL_IMAGE_BYTES, maxBodyBytes: 128 * KIB, fetchImage: loopbackOnly },
  // No private range allowed: loopback URLs must be refused before any connection.
  '/strict': { maxImageBytes: MIB, maxBodyBytes: 1.5 * MIB, fetchImage: fetchImageVia('') },
};

function testRouter(): express.Router {
  const router = express.Router();
  for (const [path, options] of Object.entries(routes)) {
    router.post(path, async (req, res) => {
      try {
        const read = req.query.optional === undefined ? readSubmission : readOptionalSubmission;
        const submission = await read(req, options);
        const { image, source, format, fields } = submission;
        res.json({ source, format, size: image?.length, sha256: image && sha256(image), fields });
      } catch (error) {
        const { socket } = req;
        observed.bytesReadAtError = socket.bytesRead;
        // Only errors that left body bytes unread close the connection; others keep it alive.
        if (res.getHeader('connection') === 'close') {
          socket.once('close', () => {
            observed.bytesReadAtClose = socket.bytesRead;
          });
        }
        throw error;
      }
    });
  }
  return router;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** What the test route answers for `bytes` read intact. */
function intact(bytes: Buffer, format: string) {
  return { format, size: bytes.length, sha256: sha256(bytes) };
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    );
  });
}

function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

beforeAll(async () => {
  const solid = () => sharp({ create: { width: 32, height: 32, channels: 3, background: '#c83232' } });
  const [png, jpeg, gif] = await Promise.all(
    [solid().png(), solid().jpeg(), solid().gif()].map((i) => i.toBuffer()),
  );
  images = { png: png!, jpeg: jpeg!, gif: gif! };
  const app = createApp({
    logger: createLogger({ level: 'silent' }),
    registry: new Registry(),
    readiness: async () => ({ status: 'ready', checks: {}, warnings: [] }),
    routers: [testRouter()],
  });
  apiServer = http.createServer(app);
  apiUrl = await listen(apiServer);
  imageServer = http.createServer((req, res) => {
    imageRequests += 1;
    if (req.url === '/photo.png') res.writeHead(200, { 'content-type': 'image/png' }).end(images.png);
    else res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><p>not an image</p>');
  });
  imageUrl = await listen(imageServer);
});

afterAll(async () => {
  await Promise.all([close(apiServer), close(imageServer)]);
});

beforeEach(() => {
  observed = {};
});

type Answer = { status: number; body: Record<string, unknown> };
type RequestBody = NonNullable<Parameters<typeof fetch>[1]>['body'];

async function post(path: string, body: RequestBody, contentType?: string): Promise<Answer> {
  const headers = contentType === undefined ? undefined : { 'content-type': contentType };
  const response = await fetch(`${apiUrl}${path}`, { method: 'POST', body, ...(headers ? { headers } : {}) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function postJson(path: string, document: unknown): Promise<Answer> {
  return post(path, JSON.stringify(document), 'application/json');
}

function form(parts: Record<string, string | Blob | Array<string | Blob>>): FormData {
  const data = new FormData();
  for (const [name, value] of Object.entries(parts)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (typeof item === 'string') data.append(name, item);
      else data.append(name, item, 'upload.bin');
    }
  }
  return data;
}

function blob(bytes: Uint8Array, type: string): Blob {
  return new Blob([new Uint8Array(bytes)], { type });
}

function expectProblem(answer: Answer, status: number, code: string): void {
  expect({ status: answer.status, code: answer.body.code }).toEqual({ status, code });
}

describe('each source round-trips the exact bytes', () => {
  it('reads a raw image body and takes fields from the query string', async () => {
    const query = `?policy=strict&metadata=${encodeURIComponent('{"user":7}')}`;
    const answer = await post(`/submit${query}`, new Uint8Array(images.png), 'image/png');
    const fields = { policy: 'strict', metadata: { user: 7 } };
    expect(answer.body).toEqual({ source: 'raw', ...intact(images.png, 'png'), fields });
  });

  it('reads a multipart image part with text fields, parsing JSON ones and gathering repeats', async () => {
    const data = form({
      policy: 'default',
      metadata: '{"tags":["a"]}',
      labels: ['cat', 'dog'],
      image: blob(images.jpeg, 'image/jpeg'),
    });
    const answer = await post('/submit', data);
    const fields = { policy: 'default', metadata: { tags: ['a'] }, labels: ['cat', 'dog'] };
    expect(answer.body).toEqual({ source: 'multipart', ...intact(images.jpeg, 'jpeg'), fields });
  });

  it('decodes base64 from JSON and keeps the other members as parsed', async () => {
    const answer = await postJson('/submit', {
      image: { base64: images.gif.toString('base64') },
      policy: 'p',
      metadata: { n: [1, 2] },
    });
    const fields = { policy: 'p', metadata: { n: [1, 2] } };
    expect(answer.body).toEqual({ source: 'base64', ...intact(images.gif, 'gif'), fields });
  });

  it('accepts URL-safe unpadded base64, data URLs and wrapped lines alike', async () => {
    const standard = images.png.toString('base64');
    const encodings = [
      images.png.toString('base64url'),
      `data:image/jpeg;base64,${standard}`,
      standard.replace(/(.{76})/g, '$1\r\n'),
    ];
    for (const base64 of encodings) {
      const answer = await postJson('/submit', { image: { base64 } });
      expect(answer.body).toEqual({ source: 'base64', ...intact(images.png, 'png'), fields: {} });
    }
  });

  it('fetches a URL image through the injected fetchImage', async () => {
    const before = imageRequests;
    const answer = await postJson('/submit', { image: { url: `${imageUrl}/photo.png` }, policy: 'p' });
    expect(answer.body).toEqual({ source: 'url', ...intact(images.png, 'png'), fields: { policy: 'p' } });
    expect(imageRequests).toBe(before + 1);
  });
});

type Upload = { status: number; body: Record<string, unknown>; sentBytes: number };

/**
 * Sends `head` then filler up to `totalBytes`, each 16 KiB chunk only after the previous one left the
 * client, and stops writing once the answer arrives. With `isDeclaredOnly`, sends just the headers
 * with a Content-Length of `totalBytes`.
 */
function upload(path: string, contentType: string, head: Buffer, totalBytes: number, isDeclaredOnly = false) {
  const headers = {
    'content-type': contentType,
    ...(isDeclaredOnly ? { 'content-length': String(totalBytes) } : {}),
  };
  const request = http.request(`${apiUrl}${path}`, { method: 'POST', headers });
  let sentBytes = 0;
  let isAnswered = false;
  const writeNext = () => {
    if (isAnswered) return;
    if (sentBytes >= totalBytes) return void request.end();
    const chunk = Buffer.alloc(16 * KIB, 0x41);
    if (sentBytes === 0) head.copy(chunk);
    sentBytes += chunk.length;
    request.write(chunk, () => setImmediate(writeNext));
  };
  return new Promise<Upload>((resolve, reject) => {
    request.on('response', (response) => {
      isAnswered = true;
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('close', () => {
        resolve({
          status: response.statusCode ?? 0,
          body: JSON.parse(Buffer.concat(chunks).toString()),
          sentBytes,
        });
        request.destroy();
      });
    });
    // Writing into a connection the server has closed fails; that is expected once answered.
    request.on('error', (error) => {
      if (!isAnswered) reject(error);
    });
    if (isDeclaredOnly) request.flushHeaders();
    else writeNext();
  });
}

describe('limits are enforced while the body streams', () => {
  const headerBytes = 2 * KIB;
  /** What node:http takes off the socket at once; the server may hold this much past the limit. */
  const socketReadBytes = 64 * KIB;

  it('cuts off a chunked raw upload at the image limit while the client still has data to send', async () => {
    const result = await upload('/small', 'image/png', images.png, 8 * MIB);
    expectProblem(result, 413, 'image_too_large');
    expect(result.sentBytes).toBeLessThan(SMALL_IMAGE_BYTES + 4 * socketReadBytes);
    expect(observed.bytesReadAtError).toBeLessThanOrEqual(SMALL_IMAGE_BYTES + socketReadBytes + headerBytes);
    expect(observed.bytesReadAtClose).toBe(observed.bytesReadAtError);
  });

  it('cuts off a chunked JSON body at the body limit', async () => {
    const head = Buffer.from('{"image":{"base64":"');
    const result = await upload('/small', 'application/json', head, 8 * MIB);
    expectProblem(result, 413, 'payload_too_large');
    expect(observed.bytesReadAtError).toBeLessThanOrEqual(128 * KIB + socketReadBytes + headerBytes);
  });

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    for (const [contentType, code] of [
      ['image/png', 'image_too_large'],
      ['application/json', 'payload_too_large'],
      ['multipart/form-data; boundary=x', 'payload_too_large'],
    ] as const) {
      expectProblem(await upload('/small', contentType, Buffer.alloc(0), 10 * MIB, true), 413, code);
      expect(observed.bytesReadAtError).toBeLessThan(headerBytes);
    }
  });

  it('refuses a multipart image part over the image limit', async () => {
    const oversized = Buffer.concat([images.png, Buffer.alloc(SMALL_IMAGE_BYTES)]);
    const answer = await post('/small', form({ image: blob(oversized, 'image/png') }));
    expectProblem(answer, 413, 'image_too_large');
  });

  it('refuses base64 that decodes to more than the image limit', async () => {
    const oversized = Buffer.concat([images.png, Buffer.alloc(SMALL_IMAGE_BYTES)]);
    const answer = await postJson('/small', { image: { base64: oversized.toString('base64') } });
    expectProblem(answer, 413, 'image_too_large');
  });

  it('bounds the fields besides the image, in JSON and in forms', async () => {
    const metadata = { note: 'x'.repeat(70 * KIB) };
    const base64 = images.png.toString('base64');
    expectProblem(await postJson('/submit', { image: { base64 }, metadata }), 413, 'payload_too_large');
    const wide = form({ metadata: JSON.stringify(metadata), image: blob(images.png, 'image/png') });
    expectProblem(await post('/submit', wide), 413, 'payload_too_large');
    const many = form(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}`, 'v'])));
    expectProblem(await post('/submit', many), 413, 'payload_too_large');
  });
});

describe('the format is decided by magic bytes', () => {
  it('accepts an image whatever type it was declared as', async () => {
    const raw = await post('/submit', new Uint8Array(images.png), 'image/jpeg');
    expect(raw.body).toMatchObject({ format: 'png', sha256: sha256(images.png) });
    const multipart = await post('/submit', form({ image: blob(images.jpeg, 'image/png') }));
    expect(multipart.body).toMatchObject({ format: 'jpeg', sha256: sha256(images.jpeg) });
  });

  it('refuses SVG, HTML and garbage sent as images, in every envelope', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>');
    const html = Buffer.from('<!doctype html><html><body>hello</body></html>');
    const garbage = Buffer.from('this is plainly not an image, just some text');
    const tiff = await sharp(images.png).tiff().toBuffer();
    for (const bytes of [svg, html, garbage, tiff]) {
      for (const answer of [
        await post('/submit', new Uint8Array(bytes), 'image/png'),
        await post('/submit', form({ image: blob(bytes, 'image/png') })),
        await postJson('/submit', { image: { base64: bytes.toString('base64') } }),
      ]) {
        expectProblem(answer, 415, 'unsupported_format');
      }
    }
  });

  it('stops reading a non-image stream after its first bytes', async () => {
    const html = Buffer.from(`<!doctype html>${'<p>x</p>'.repeat(100)}`);
    const result = await upload('/submit', 'image/png', html, 8 * MIB);
    expectProblem(result, 415, 'unsupported_format');
    expect(observed.bytesReadAtError).toBeLessThan(128 * KIB);
  });

  it('refuses a URL that serves HTML', async () => {
    const answer = await postJson('/submit', { image: { url: `${imageUrl}/page.html` } });
    expectProblem(answer, 415, 'unsupported_format');
  });
});

describe('malformed requests get a typed 4xx', () => {
  it('refuses invalid base64 with bad_request', async () => {
    for (const base64 of ['iVBOR*w0K', 'iVBORw0KG', 'iVB=ORw0', 'iVBORw0K===', 'data:image/png,iVBORw0K']) {
      const answer = await postJson('/submit', { image: { base64 } });
      expectProblem(answer, 400, 'bad_request');
      expect(answer.body.field).toBe('image.base64');
    }
  });

  it('says where JSON goes wrong', async () => {
    const answer = await post('/submit', '{"image": {"base64": "x"},\n  "policy": }', 'application/json');
    expectProblem(answer, 400, 'bad_request');
    expect(answer.body).toMatchObject({ line: 2, column: 13 });
    expect(answer.body.detail).toContain('line 2, column 13');
  });

  it('refuses JSON that is not an object, or an image that is neither base64 nor url', async () => {
    const notAnImage = [{ image: 'https://x.test/a.png' }, { image: { base64: 'a', url: 'b' } }];
    for (const document of [[1], 'text', null, ...notAnImage]) {
      expectProblem(await postJson('/submit', document), 400, 'bad_request');
    }
  });

  it('requires an image, naming the field', async () => {
    for (const answer of [
      await postJson('/submit', { policy: 'p' }),
      await post('/submit', form({ policy: 'p' })),
    ]) {
      expectProblem(answer, 400, 'bad_request');
      expect(answer.body.field).toBe('image');
    }
  });

  it('refuses a second image part, other file parts and an image sent as text', async () => {
    const png = () => blob(images.png, 'image/png');
    for (const data of [
      form({ image: [png(), png()] }),
      form({ image: png(), other: png() }),
      form({ image: 'x' }),
    ]) {
      expectProblem(await post('/submit', data), 400, 'bad_request');
    }
  });

  it('refuses a multipart body without a boundary or that ends before its closing one', async () => {
    expectProblem(await post('/submit', 'x', 'multipart/form-data'), 400, 'bad_request');
    const body = '--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nabc';
    expectProblem(await post('/submit', body, 'multipart/form-data; boundary=b'), 400, 'bad_request');
  });

  it('answers 415 naming the accepted types for any other content type', async () => {
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', undefined]) {
      const answer = await post('/submit', new Uint8Array(images.png), contentType);
      expectProblem(answer, 415, 'unsupported_format');
      expect(answer.body.accepted).toEqual(ACCEPTED_TYPES);
    }
  });

  it('reports an empty image as empty_image', async () => {
    expectProblem(await post('/submit', new Uint8Array(), 'application/octet-stream'), 400, 'empty_image');
    expectProblem(await postJson('/submit', { image: { base64: '' } }), 400, 'empty_image');
  });
});

describe('URL images and optional images', () => {
  it('surfaces url_forbidden from fetchImage without reaching the host', async () => {
    const before = imageRequests;
    const answer = await postJson('/strict', { image: { url: `${imageUrl}/photo.png` } });
    expectProblem(answer, 400, 'url_forbidden');
    expect(imageRequests).toBe(before);
  });

  it('decodes a data: URL given as url instead of fetching it', async () => {
    const before = imageRequests;
    const url = `data:image/png;base64,${images.png.toString('base64')}`;
    const answer = await postJson('/submit', { image: { url } });
    expect(answer.body).toEqual({ source: 'base64', ...intact(images.png, 'png'), fields: {} });
    expect(imageRequests).toBe(before);
  });

  it('returns the fields alone when an optional image is absent', async () => {
    const json = await postJson('/submit?optional', { text: 'a cat' });
    expect(json.body).toEqual({ fields: { text: 'a cat' } });
    const multipart = await post('/submit?optional', form({ text: 'a dog' }));
    expect(multipart.body).toEqual({ fields: { text: 'a dog' } });
  });
});

// One HTTP exchange with a host whose addresses were already checked. The socket is handed exactly
// those addresses through a custom `lookup`, so no second DNS answer (rebinding) can change the target,
// while the Host header and TLS SNI still carry the name from the URL.

import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { ClipmodError, type ErrorCode } from '../errors/index.ts';
import type { ResolvedAddress } from './resolve-allowed-addresses.ts';

export type OversizePolicy = 'fail' | 'truncate';

export type PinnedRequest = {
  url: URL;
  addresses: readonly ResolvedAddress[];
  method: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  headersTimeoutMs: number;
  maxBytes: number;
  onOversize: OversizePolicy;
  oversizeCode: ErrorCode;
  signal: AbortSignal;
};

export type PinnedResponse = {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The address the socket actually connected to. */
  address: string;
  isTruncated: boolean;
};

export function sendPinnedRequest(pinned: PinnedRequest): Promise<PinnedResponse> {
  return new Promise((resolve, reject) => {
    const request = openRequest(pinned);
    // Covers connect and time to first response byte; the body is bounded by the overall deadline.
    const headersTimer = setTimeout(() => {
      request.destroy(
        new ClipmodError('url_fetch_failed', `No response headers within ${pinned.headersTimeoutMs} ms`, {
          details: { reason: 'headers_timeout', limitMs: pinned.headersTimeoutMs },
        }),
      );
    }, pinned.headersTimeoutMs);
    request.on('error', (error) => {
      clearTimeout(headersTimer);
      reject(error);
    });
    request.on('response', (response) => {
      clearTimeout(headersTimer);
      const address = response.socket.remoteAddress ?? pinned.addresses[0]?.address ?? '';
      readCappedBody(response, pinned).then(
        ({ body, isTruncated }) =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body,
            address,
            isTruncated,
          }),
        reject,
      );
    });
    request.end(pinned.body);
  });
}

function openRequest(pinned: PinnedRequest): http.ClientRequest {
  const { url } = pinned;
  const client = url.protocol === 'https:' ? https : http;
  const headers = { ...pinned.headers };
  if (pinned.body !== undefined) headers['content-length'] = String(pinned.body.length);
  return client.request({
    protocol: url.protocol,
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? undefined : Number(url.port),
    path: `${url.pathname}${url.search}`,
    method: pinned.method,
    headers,
    ...(url.username === ''
      ? {}
      : { auth: `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` }),
    // A fresh connection per request: a pooled socket could have been opened under another allow-list.
    agent: false,
    lookup: pinnedLookup(url.hostname, pinned.addresses),
    signal: pinned.signal,
  });
}

/** Answers the socket's resolution with the checked addresses only, in either callback shape. */
function pinnedLookup(hostname: string, addresses: readonly ResolvedAddress[]): LookupFunction {
  return (requested, options, callback) => {
    const first = addresses[0];
    if (requested !== hostname || first === undefined) {
      callback(new Error(`Refusing to resolve ${requested}: not the checked host ${hostname}`), '');
    } else if (options.all === true) {
      callback(
        null,
        addresses.map((entry) => ({ ...entry })),
      );
    } else {
      callback(null, first.address, first.family);
    }
  };
}

type CappedBody = { body: Buffer; isTruncated: boolean };

function readCappedBody(response: IncomingMessage, pinned: PinnedRequest): Promise<CappedBody> {
  const { maxBytes, onOversize } = pinned;
  const tooLarge = () =>
    new ClipmodError(pinned.oversizeCode, `Response is larger than ${maxBytes} bytes`, {
      details: { reason: 'too_large', limitBytes: maxBytes },
    });
  return new Promise((resolve, reject) => {
    const declaredBytes = Number(response.headers['content-length']);
    if (onOversize === 'fail' && declaredBytes > maxBytes) {
      response.destroy();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let receivedBytes = 0;
    response.on('data', (chunk: Buffer) => {
      const roomBytes = maxBytes - receivedBytes;
      if (chunk.length <= roomBytes) {
        chunks.push(chunk);
        receivedBytes += chunk.length;
        return;
      }
      // Stop reading at the cap either way: the rest of an oversized body is never buffered.
      response.destroy();
      if (onOversize === 'fail') reject(tooLarge());
      else resolve({ body: Buffer.concat([...chunks, chunk.subarray(0, roomBytes)]), isTruncated: true });
    });
    response.on('end', () => resolve({ body: Buffer.concat(chunks), isTruncated: false }));
    response.on('error', reject);
    response.on('close', () => {
      if (!response.complete) reject(new Error('Connection closed before the response body ended'));
    });
  });
}

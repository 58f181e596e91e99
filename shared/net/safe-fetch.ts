// The one outgoing HTTP client for customer-supplied URLs (image fetches, webhooks). Every hop is
// resolved, checked against the address policy, then connected to by address; time, header wait and
// body size are capped so a hostile server cannot hold a worker.

import type { IncomingHttpHeaders } from 'node:http';
import { ClipmodError, type ErrorCode, isClipmodError } from '../errors/index.ts';
import type { Cidr } from './cidr.ts';
import { assertPortAllowed } from './port-policy.ts';
import {
  errorCodeOf,
  type HostLookup,
  resolveAllowedAddresses,
  systemLookup,
} from './resolve-allowed-addresses.ts';
import { type OversizePolicy, type PinnedResponse, sendPinnedRequest } from './send-pinned-request.ts';

export type SafeFetchOptions = {
  /** Default GET. */
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Parsed CLIPMOD_ALLOW_PRIVATE_NETWORKS: ranges reachable although private. Default none. */
  allowList?: readonly Cidr[];
  /** Default: dns.lookup with `all: true`. */
  lookup?: HostLookup;
  /** Everything, all hops included: resolution, connect, headers, body. Default 10 s. */
  timeoutMs?: number;
  /** From opening the connection to the response headers, per hop. Default 5 s (capped by timeoutMs). */
  headersTimeoutMs?: number;
  /** Default 0: a redirect is returned to the caller as it is. Each followed hop is checked anew. */
  maxRedirects?: number;
  /** Response body cap. Default 10 MiB. */
  maxBytes?: number;
  /** `fail` throws `oversizeCode`; `truncate` returns the first maxBytes with isTruncated. Default fail. */
  onOversize?: OversizePolicy;
  /** Default url_fetch_failed; image fetches pass image_too_large. */
  oversizeCode?: ErrorCode;
  /** Throw url_fetch_failed (reason http_status) for a final status outside 200–299. Default false. */
  shouldFailOnHttpError?: boolean;
  signal?: AbortSignal;
};

export type SafeFetchResponse = {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The URL of the final hop. */
  url: string;
  /** The address connected to on the final hop. */
  address: string;
  isTruncated: boolean;
};

/** For customer image URLs: a few redirects, oversize is the image's fault, errors are failures. */
export const imageFetchDefaults = Object.freeze({
  maxRedirects: 3,
  onOversize: 'fail',
  oversizeCode: 'image_too_large',
  shouldFailOnHttpError: true,
} satisfies SafeFetchOptions);

/** For webhook deliveries: never follow redirects, keep at most 64 KiB of whatever the receiver says. */
export const webhookFetchDefaults = Object.freeze({
  method: 'POST',
  maxRedirects: 0,
  maxBytes: 64 * 1024,
  onOversize: 'truncate',
} satisfies SafeFetchOptions);

const redirectStatuses = new Set([301, 302, 303, 307, 308]);

/**
 * Fetches `input` without ever connecting to a forbidden address. Throws ClipmodError `url_forbidden`
 * when the policy refuses a hop, `url_fetch_failed` (or `oversizeCode`) otherwise, always with
 * `details.reason`.
 */
export async function safeFetch(
  input: string | URL,
  options: SafeFetchOptions = {},
): Promise<SafeFetchResponse> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = startDeadline(timeoutMs, options.signal);
  try {
    const response = await followHops(parseTarget(input), options, deadline.signal);
    if (options.shouldFailOnHttpError === true && (response.status < 200 || response.status > 299)) {
      throw new ClipmodError('url_fetch_failed', `URL answered HTTP ${response.status}`, {
        details: { reason: 'http_status', status: response.status },
      });
    }
    return response;
  } catch (error) {
    throw asFetchError(error, deadline, timeoutMs);
  } finally {
    deadline.clear();
  }
}

async function followHops(
  first: URL,
  options: SafeFetchOptions,
  signal: AbortSignal,
): Promise<SafeFetchResponse> {
  const maxRedirects = options.maxRedirects ?? 0;
  let request = {
    url: first,
    method: options.method ?? 'GET',
    headers: lowerCaseKeys(options.headers ?? {}),
    body: typeof options.body === 'string' ? Buffer.from(options.body) : options.body,
  };
  for (let hop = 0; ; hop += 1) {
    const context = {
      allowList: options.allowList ?? [],
      lookup: options.lookup ?? systemLookup,
      signal,
      hop,
    };
    assertPortAllowed(request.url, hop);
    const addresses = await resolveAllowedAddresses(request.url, context);
    const response = await sendPinnedRequest({
      ...request,
      addresses,
      headersTimeoutMs: Math.min(options.headersTimeoutMs ?? 5_000, options.timeoutMs ?? 10_000),
      maxBytes: options.maxBytes ?? 10 * 1024 * 1024,
      onOversize: options.onOversize ?? 'fail',
      oversizeCode: options.oversizeCode ?? 'url_fetch_failed',
      signal,
    });
    const location = redirectStatuses.has(response.status) ? response.headers.location : undefined;
    if (location === undefined || maxRedirects === 0) return { ...response, url: request.url.href };
    if (hop >= maxRedirects) {
      throw new ClipmodError('url_fetch_failed', `More than ${maxRedirects} redirects`, {
        details: { reason: 'too_many_redirects', limit: maxRedirects },
      });
    }
    request = { ...request, ...nextHop(request, location, response) };
  }
}

type HopRequest = { url: URL; method: string; headers: Record<string, string>; body: Buffer | undefined };

/** Browser redirect semantics: 303 (and 301/302 after POST) become a bodiless GET. */
function nextHop(current: HopRequest, location: string, response: PinnedResponse): HopRequest {
  const url = parseTarget(location, current.url);
  const headers = { ...current.headers };
  // Credentials meant for one origin must not follow a redirect to another.
  if (url.origin !== current.url.origin) {
    delete headers.authorization;
    delete headers.cookie;
  }
  const becomesGet = response.status === 303 || (response.status <= 302 && current.method === 'POST');
  if (!becomesGet) return { url, method: current.method, headers, body: current.body };
  delete headers['content-type'];
  return { url, method: current.method === 'HEAD' ? 'HEAD' : 'GET', headers, body: undefined };
}

function parseTarget(input: string | URL, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(input, base);
  } catch {
    throw new ClipmodError('url_forbidden', 'URL is not valid', { details: { reason: 'invalid_url' } });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ClipmodError('url_forbidden', `URL scheme ${url.protocol} is not allowed; use http or https`, {
      details: { reason: 'scheme', scheme: url.protocol.replace(/:$/, '') },
    });
  }
  return url;
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

type Deadline = { signal: AbortSignal; hasExpired: () => boolean; clear: () => void };

function startDeadline(timeoutMs: number, callerSignal: AbortSignal | undefined): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`Deadline of ${timeoutMs} ms passed`)),
    timeoutMs,
  );
  const signal =
    callerSignal === undefined ? controller.signal : AbortSignal.any([controller.signal, callerSignal]);
  return { signal, hasExpired: () => controller.signal.aborted, clear: () => clearTimeout(timer) };
}

function asFetchError(error: unknown, deadline: Deadline, timeoutMs: number): ClipmodError {
  if (isClipmodError(error)) return error;
  if (deadline.hasExpired()) {
    return new ClipmodError('url_fetch_failed', `URL fetch did not finish within ${timeoutMs} ms`, {
      details: { reason: 'timeout', limitMs: timeoutMs },
      cause: error,
    });
  }
  const reason = deadline.signal.aborted ? 'aborted' : 'network';
  return new ClipmodError('url_fetch_failed', 'URL could not be fetched', {
    details: { reason, errorCode: errorCodeOf(error) },
    cause: error,
  });
}

import { ClipmodError } from '../errors/index.ts';
import {
  assertPortAllowed,
  type Cidr,
  checkAddress,
  type HostLookup,
  parseIpAddress,
  systemLookup,
} from '../net/index.ts';

// The registration-time check of a webhook URL. It resolves the host and applies the same address
// policy as the SSRF-safe client, so a forbidden endpoint is refused with a clear 400 instead of
// failing quietly for days. It is not the protection: DNS can change after registration, so every
// send checks again (safeFetch), and only that check is trusted.

export type WebhookUrlPolicy = {
  /** CLIPMOD_ALLOW_PRIVATE_NETWORKS, parsed. */
  allowList: readonly Cidr[];
  /** Injected by tests; the system resolver otherwise. */
  lookup?: HostLookup;
};

const maxUrlLength = 2_048;

/** The normalised URL (fragment dropped), or url_forbidden / url_fetch_failed naming the reason. */
export async function checkWebhookUrl(input: string, policy: WebhookUrlPolicy): Promise<string> {
  const url = parseWebhookUrl(input);
  const literal = parseIpAddress(url.hostname);
  const addresses = literal
    ? [literal]
    : (await resolve(url.hostname, policy.lookup ?? systemLookup)).map((answer) => parseIpAddress(answer));
  for (const address of addresses) {
    const verdict = address ? checkAddress(address, policy.allowList) : undefined;
    if (verdict?.isAllowed) continue;
    const category = verdict && !verdict.isAllowed ? verdict.category : 'unreadable';
    throw new ClipmodError(
      'url_forbidden',
      `webhook URL host is a ${category} address, which is not allowed`,
      {
        details: { reason: 'forbidden_address', category, field: 'url' },
      },
    );
  }
  return url.href;
}

function parseWebhookUrl(input: string): URL {
  if (input.length > maxUrlLength || !URL.canParse(input)) {
    throw new ClipmodError(
      'bad_request',
      `url: must be an absolute http(s) URL of at most ${maxUrlLength} characters`,
      {
        details: { field: 'url' },
      },
    );
  }
  const url = new URL(input);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ClipmodError(
      'url_forbidden',
      `webhook URL scheme ${url.protocol} is not allowed; use https or http`,
      {
        details: { reason: 'scheme', field: 'url' },
      },
    );
  }
  url.hash = '';
  try {
    assertPortAllowed(url);
  } catch (error) {
    if (error instanceof ClipmodError) error.details.field = 'url';
    throw error;
  }
  return url;
}

async function resolve(hostname: string, lookup: HostLookup): Promise<string[]> {
  let answers: ReadonlyArray<{ address: string }>;
  try {
    answers = await lookup(hostname);
  } catch (error) {
    throw new ClipmodError('url_fetch_failed', `webhook URL host ${hostname} could not be resolved`, {
      details: { reason: 'dns', field: 'url' },
      cause: error,
    });
  }
  if (answers.length === 0) {
    throw new ClipmodError('url_fetch_failed', `webhook URL host ${hostname} has no addresses`, {
      details: { reason: 'dns', field: 'url' },
    });
  }
  return answers.map((answer) => answer.address);
}

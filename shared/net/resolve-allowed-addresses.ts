// Turns a URL's host into the addresses a request may connect to, refusing the whole host when any
// answer is forbidden: a resolver that mixes a public and a private answer is a rebinding attempt.

import { lookup as dnsLookup } from 'node:dns/promises';
import { ClipmodError } from '../errors/index.ts';
import { checkAddress } from './address-policy.ts';
import type { Cidr } from './cidr.ts';
import { type IpAddress, parseIpAddress } from './ip-address.ts';

export type ResolvedAddress = { address: string; family: 4 | 6 };

/** Resolves a host name to every address it has; injectable so tests never depend on real DNS. */
export type HostLookup = (hostname: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;

export const systemLookup: HostLookup = (hostname) => dnsLookup(hostname, { all: true });

export type ResolveContext = {
  allowList: readonly Cidr[];
  lookup: HostLookup;
  signal: AbortSignal;
  /** Which redirect hop this is (0 for the URL the caller gave), reported on refusal. */
  hop: number;
};

export async function resolveAllowedAddresses(url: URL, context: ResolveContext): Promise<ResolvedAddress[]> {
  // The URL host is already WHATWG-normalised (`0x7f.1`, `2130706433` and `127.1` all arrive as
  // `127.0.0.1`; IPv6 arrives bracketed), so strict parsing alone recognises every IP literal.
  const literal = parseIpAddress(url.hostname);
  if (literal !== undefined) {
    refuseIfForbidden(literal, context);
    return [{ address: url.hostname.replace(/^\[|\]$/g, ''), family: literal.family }];
  }
  const answers = await lookupWithin(url.hostname, context);
  if (answers.length === 0) {
    throw new ClipmodError('url_fetch_failed', `Host ${url.hostname} has no addresses`, {
      details: { reason: 'dns', hop: context.hop },
    });
  }
  return answers.map((answer) => {
    const parsed = parseIpAddress(answer.address);
    if (parsed === undefined) {
      throw new ClipmodError('url_forbidden', `Host ${url.hostname} resolved to an unreadable address`, {
        details: { reason: 'unparseable_address', hop: context.hop },
      });
    }
    refuseIfForbidden(parsed, context);
    return { address: answer.address, family: parsed.family };
  });
}

function refuseIfForbidden(address: IpAddress, context: ResolveContext): void {
  const verdict = checkAddress(address, context.allowList);
  if (verdict.isAllowed) return;
  // The resolved address itself stays out of the details: they reach the client, and naming internal
  // addresses would turn the refusal into a DNS oracle for the private network.
  throw new ClipmodError('url_forbidden', `URL host is a ${verdict.category} address, which is not allowed`, {
    details: { reason: 'forbidden_address', category: verdict.category, hop: context.hop },
  });
}

/** Runs the lookup but gives up at the deadline: dns.lookup itself cannot be cancelled. */
async function lookupWithin(hostname: string, context: ResolveContext) {
  const { signal } = context;
  signal.throwIfAborted();
  let rejectAborted: (reason: unknown) => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    rejectAborted = reject;
  });
  const onAbort = () => rejectAborted(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await Promise.race([context.lookup(hostname), aborted]);
  } catch (error) {
    if (context.signal.aborted) throw error;
    throw new ClipmodError('url_fetch_failed', `Host ${hostname} could not be resolved`, {
      details: { reason: 'dns', hop: context.hop, errorCode: errorCodeOf(error) },
      cause: error,
    });
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

export function errorCodeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

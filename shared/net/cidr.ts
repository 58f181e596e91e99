// CIDR ranges: the unit of both the built-in forbidden table and the operator's allow-list
// (CLIPMOD_ALLOW_PRIVATE_NETWORKS).

import { ClipmodError } from '../errors/index.ts';
import { type IpAddress, type IpFamily, ipv4Bits, ipv6Bits, parseIpAddress } from './ip-address.ts';

export type Cidr = {
  family: IpFamily;
  /** The network address with all host bits zero. */
  network: bigint;
  prefixLength: number;
  /** The text it was parsed from, for messages and logs. */
  text: string;
};

function bitsOf(family: IpFamily): number {
  return family === 4 ? ipv4Bits : ipv6Bits;
}

function maskFor(family: IpFamily, prefixLength: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return (all >> BigInt(prefixLength)) ^ all;
}

/**
 * Parses `10.0.0.0/8`, `fc00::/7`, or a bare address (a single-host range). Returns undefined for
 * anything malformed, including host bits set past the prefix (`10.0.0.1/8`), which is almost always
 * a typo for a narrower or wider range than the operator meant.
 */
export function parseCidr(text: string): Cidr | undefined {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  const address = parseIpAddress(slash === -1 ? trimmed : trimmed.slice(0, slash));
  if (address === undefined || trimmed.includes('%')) return undefined;
  const maxPrefix = bitsOf(address.family);
  const prefixText = slash === -1 ? String(maxPrefix) : trimmed.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return undefined;
  const prefixLength = Number(prefixText);
  if (prefixLength > maxPrefix) return undefined;
  const mask = maskFor(address.family, prefixLength);
  if ((address.value & mask) !== address.value) return undefined;
  return { family: address.family, network: address.value, prefixLength, text: trimmed };
}

/** Parses a CIDR, throwing for built-in tables where a bad entry is a programming error. */
export function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (parsed === undefined) throw new Error(`Invalid built-in CIDR ${text}`);
  return parsed;
}

/**
 * Parses a comma- or whitespace-separated list, as found in CLIPMOD_ALLOW_PRIVATE_NETWORKS. Every bad
 * entry is reported in one error so an operator fixes them all at once.
 */
export function parseCidrList(text: string): Cidr[] {
  const entries = text.split(/[\s,]+/).filter((entry) => entry !== '');
  const parsed = entries.map((entry) => ({ entry, range: parseCidr(entry) }));
  const invalid = parsed.filter((item) => item.range === undefined).map((item) => item.entry);
  if (invalid.length > 0) {
    throw new ClipmodError('invalid_config', `Invalid CIDR ${invalid.map((e) => `"${e}"`).join(', ')}`, {
      details: { invalid },
    });
  }
  return parsed.flatMap((item) => (item.range === undefined ? [] : [item.range]));
}

export function cidrContains(range: Cidr, address: IpAddress): boolean {
  if (range.family !== address.family) return false;
  return (address.value & maskFor(range.family, range.prefixLength)) === range.network;
}

export function anyCidrContains(ranges: readonly Cidr[], address: IpAddress): boolean {
  return ranges.some((range) => cidrContains(range, address));
}

// Which addresses an outgoing request may connect to. Pure: every decision is a table lookup on the
// numeric address, so the same rules apply to URL literals, resolver answers and redirect hops.

import { anyCidrContains, type Cidr, cidr, cidrContains } from './cidr.ts';
import type { IpAddress } from './ip-address.ts';

export type AddressCategory =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'metadata'
  | 'cgnat'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'benchmarking'
  | 'documentation'
  | 'teredo';

export type AddressVerdict = { isAllowed: true } | { isAllowed: false; category: AddressCategory };

/** A range either forbidden outright, or one whose IPv6 addresses carry an IPv4 address to judge. */
type Rule = { range: Cidr; category: AddressCategory } | { range: Cidr; embeddedIpv4Shift: bigint };

const rule = (text: string, category: AddressCategory): Rule => ({ range: cidr(text), category });
const embeds = (text: string, shift: bigint): Rule => ({ range: cidr(text), embeddedIpv4Shift: shift });

// First match wins, so single hosts come before the ranges that contain them.
const ipv4Rules: readonly Rule[] = [
  rule('169.254.169.254/32', 'metadata'), // AWS, GCP, Azure, OCI, DigitalOcean instance metadata
  rule('100.100.100.200/32', 'metadata'), // Alibaba Cloud
  rule('168.63.129.16/32', 'metadata'), // Azure WireServer: public-looking but host-local
  rule('255.255.255.255/32', 'broadcast'),
  rule('0.0.0.0/8', 'unspecified'), // Linux routes 0.0.0.0 to the local host
  rule('127.0.0.0/8', 'loopback'),
  rule('10.0.0.0/8', 'private'),
  rule('172.16.0.0/12', 'private'),
  rule('192.168.0.0/16', 'private'),
  rule('169.254.0.0/16', 'link_local'),
  rule('100.64.0.0/10', 'cgnat'),
  rule('192.0.0.0/24', 'reserved'), // IETF protocol assignments
  rule('192.88.99.0/24', 'reserved'), // retired 6to4 relay anycast
  rule('192.0.2.0/24', 'documentation'),
  rule('198.51.100.0/24', 'documentation'),
  rule('203.0.113.0/24', 'documentation'),
  rule('198.18.0.0/15', 'benchmarking'),
  rule('224.0.0.0/4', 'multicast'),
  rule('240.0.0.0/4', 'reserved'),
];

const ipv6Rules: readonly Rule[] = [
  rule('::/128', 'unspecified'),
  rule('::1/128', 'loopback'),
  rule('fd00:ec2::254/128', 'metadata'), // AWS IMDS over IPv6
  // Forms that reach an IPv4 host; judged by that host so ::ffff:127.0.0.1 is as forbidden as 127.0.0.1.
  embeds('::ffff:0:0/96', 0n), // IPv4-mapped
  embeds('::ffff:0:0:0/96', 0n), // IPv4-translated (SIIT)
  embeds('::/96', 0n), // IPv4-compatible (deprecated)
  embeds('64:ff9b::/96', 0n), // NAT64 well-known prefix
  embeds('2002::/16', 80n), // 6to4: the IPv4 address follows the 16-bit prefix
  rule('64:ff9b:1::/48', 'private'), // local-use NAT64
  rule('100::/64', 'reserved'), // discard-only
  rule('2001::/32', 'teredo'), // tunnels to any IPv4 host, including private ones
  rule('2001:db8::/32', 'documentation'),
  rule('2001::/23', 'reserved'), // IETF protocol assignments
  rule('3fff::/20', 'documentation'),
  rule('5f00::/16', 'reserved'), // SRv6 SIDs
  rule('fc00::/7', 'private'),
  rule('fec0::/10', 'private'), // deprecated site-local
  rule('fe80::/10', 'link_local'),
  rule('ff00::/8', 'multicast'),
];

// Only 2000::/3 is allocated for global unicast; anything else the tables above missed is refused.
const ipv6GlobalUnicast = cidr('2000::/3');

/** The reason an address is not a public unicast host, or undefined when it is one. */
export function classifyAddress(address: IpAddress): AddressCategory | undefined {
  const rules = address.family === 4 ? ipv4Rules : ipv6Rules;
  const match = rules.find((candidate) => cidrContains(candidate.range, address));
  if (match !== undefined) {
    if ('category' in match) return match.category;
    return classifyAddress({ family: 4, value: (address.value >> match.embeddedIpv4Shift) & 0xffffffffn });
  }
  if (address.family === 6 && !cidrContains(ipv6GlobalUnicast, address)) return 'reserved';
  return undefined;
}

const ipv4Mapped = cidr('::ffff:0:0/96');

/**
 * Decides whether a request may connect to `address`. The allow-list opens any range it covers except
 * cloud metadata endpoints: no image or webhook lives there, and a broad allow-list entry (say
 * 169.254.0.0/16) must not hand out instance credentials. An IPv4-mapped address counts as its IPv4
 * address for the allow-list, since a dual-stack socket connects to exactly that host.
 */
export function checkAddress(address: IpAddress, allowList: readonly Cidr[]): AddressVerdict {
  const category = classifyAddress(address);
  if (category === undefined) return { isAllowed: true };
  if (category === 'metadata') return { isAllowed: false, category };
  if (anyCidrContains(allowList, address)) return { isAllowed: true };
  if (cidrContains(ipv4Mapped, address)) {
    const ipv4: IpAddress = { family: 4, value: address.value & 0xffffffffn };
    if (anyCidrContains(allowList, ipv4)) return { isAllowed: true };
  }
  return { isAllowed: false, category };
}

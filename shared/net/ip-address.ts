// IP address parsing into one numeric form, so range checks are integer comparisons instead of string
// matching (string matching is how SSRF filters get bypassed by alternative spellings).

export type IpFamily = 4 | 6;

/** An address as an unsigned integer: 32 bits for IPv4, 128 bits for IPv6. */
export type IpAddress = { family: IpFamily; value: bigint };

export const ipv4Bits = 32;
export const ipv6Bits = 128;

/**
 * Parses canonical dotted-quad IPv4 or any RFC 4291 IPv6 text (brackets and a `%zone` suffix are
 * ignored). Legacy IPv4 spellings (`0x7f.1`, `0177.0.0.1`, `2130706433`) are deliberately refused here:
 * URL hosts are normalised by WHATWG parsing before they reach this function, and anything else that
 * looks like them (operator config, resolver output) is ambiguous and better rejected.
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  const unbracketed = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (unbracketed.includes(':')) {
    const value = parseIpv6(stripZone(unbracketed));
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = parseIpv4(unbracketed);
  return value === undefined ? undefined : { family: 4, value };
}

export function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

function stripZone(text: string): string {
  const percent = text.indexOf('%');
  return percent === -1 ? text : text.slice(0, percent);
}

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

/** Expands `::` and a trailing dotted IPv4 tail into eight 16-bit groups. */
function parseIpv6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const hasGap = halves.length === 2;
  // An embedded IPv4 tail is only valid at the very end of the address.
  const head = parseGroups(halves[0] ?? '', !hasGap);
  const tail = hasGap ? parseGroups(halves[1] ?? '', true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (hasGap ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<number>(hasGap ? missing : 0).fill(0), ...tail];
  return groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}

function parseGroups(text: string, mayEndInIpv4: boolean): number[] | undefined {
  if (text === '') return [];
  const pieces = text.split(':');
  const groups: number[] = [];
  for (const [index, piece] of pieces.entries()) {
    if (mayEndInIpv4 && index === pieces.length - 1 && piece.includes('.')) {
      const ipv4 = parseIpv4(piece);
      if (ipv4 === undefined) return undefined;
      groups.push(Number(ipv4 >> 16n), Number(ipv4 & 0xffffn));
    } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
      groups.push(Number.parseInt(piece, 16));
    } else {
      return undefined;
    }
  }
  return groups;
}

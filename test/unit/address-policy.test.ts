import { describe, expect, it } from 'vitest';
import {
  checkAddress,
  classifyAddress,
  type IpAddress,
  parseCidr,
  parseCidrList,
  parseIpAddress,
} from '../../shared/net/index.ts';

function ip(text: string): IpAddress {
  const parsed = parseIpAddress(text);
  if (parsed === undefined) throw new Error(`test address ${text} did not parse`);
  return parsed;
}

/** What the policy sees for a URL: the WHATWG-normalised host, parsed strictly. */
function urlHostCategory(url: string) {
  const parsed = parseIpAddress(new URL(url).hostname);
  return parsed === undefined ? 'not-a-literal' : classifyAddress(parsed);
}

describe('parseIpAddress', () => {
  it('reads IPv4 and IPv6 into the same integers their spellings denote', () => {
    expect(ip('127.0.0.1')).toEqual({ family: 4, value: 0x7f000001n });
    expect(ip('::1')).toEqual({ family: 6, value: 1n });
    expect(ip('[::ffff:127.0.0.1]')).toEqual(ip('::ffff:7f00:1'));
    expect(ip('0:0:0:0:0:ffff:7f00:1')).toEqual(ip('::ffff:7f00:1'));
    expect(ip('fe80::1%eth0')).toEqual(ip('fe80::1'));
    expect(ip('2001:db8::')).toEqual({ family: 6, value: 0x20010db8n << 96n });
  });

  it.each([
    '0x7f.1',
    '0177.0.0.1',
    '2130706433',
    '127.1',
    '256.0.0.1',
    '1.2.3.4.5',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '1.2.3.4::',
    '::12345',
    ':1',
    '',
  ])('refuses the ambiguous or malformed spelling %j', (text) => {
    expect(parseIpAddress(text)).toBeUndefined();
  });
});

describe('parseCidr and parseCidrList', () => {
  it('parses ranges and bare addresses as single-host ranges', () => {
    expect(parseCidr('10.0.0.0/8')).toMatchObject({ family: 4, network: 0x0a000000n, prefixLength: 8 });
    expect(parseCidr('::1')).toMatchObject({ family: 6, network: 1n, prefixLength: 128 });
    expect(parseCidr('0.0.0.0/0')).toMatchObject({ family: 4, network: 0n, prefixLength: 0 });
  });

  it.each(['10.0.0.1/8', '10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/08', 'fe80::%eth0/64', 'x/8'])(
    'rejects %j',
    (text) => {
      expect(parseCidr(text)).toBeUndefined();
    },
  );

  it('splits a comma or space separated list and reports every bad entry at once', () => {
    expect(parseCidrList(' 127.0.0.0/8, ::1/128  10.1.0.0/16 ').map((range) => range.text)).toEqual([
      '127.0.0.0/8',
      '::1/128',
      '10.1.0.0/16',
    ]);
    expect(parseCidrList('')).toEqual([]);
    expect(() => parseCidrList('127.0.0.0/8, 10.0.0.1/8, nonsense')).toThrow(
      expect.objectContaining({ code: 'invalid_config', details: { invalid: ['10.0.0.1/8', 'nonsense'] } }),
    );
  });
});

describe('classifyAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['10.0.0.5', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fec0::1', 'private'],
    ['169.254.0.1', 'link_local'],
    ['fe80::1', 'link_local'],
    ['febf::1', 'link_local'],
    ['169.254.169.254', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['168.63.129.16', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['192.0.0.8', 'reserved'],
    ['100::1', 'reserved'],
    ['::ffff:0:0:0', 'unspecified'],
    ['4000::1', 'reserved'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['192.0.2.1', 'documentation'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.9', 'documentation'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
  ])('classifies %s as %s', (text, category) => {
    expect(classifyAddress(ip(text))).toBe(category);
  });

  it.each([
    ['::ffff:127.0.0.1', 'loopback'], // IPv4-mapped
    ['::ffff:a00:5', 'private'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:0:7f00:1', 'loopback'], // IPv4-translated
    ['::7f00:1', 'loopback'], // IPv4-compatible
    ['::10.0.0.5', 'private'],
    ['64:ff9b::7f00:1', 'loopback'], // NAT64
    ['64:ff9b::169.254.169.254', 'metadata'],
    ['64:ff9b:1::1', 'private'], // local-use NAT64
    ['2002:7f00:1::', 'loopback'], // 6to4
    ['2002:c0a8:101::1', 'private'],
  ])('judges %s by the IPv4 address it embeds (%s)', (text, category) => {
    expect(classifyAddress(ip(text))).toBe(category);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    '2002:808:808::1',
  ])('leaves the public unicast address %s unclassified', (text) => {
    expect(classifyAddress(ip(text))).toBeUndefined();
  });
});

describe('every literal spelling of loopback in a URL', () => {
  it.each([
    'http://127.0.0.1/',
    'http://2130706433/',
    'http://0x7f000001/',
    'http://0177.0.0.1/',
    'http://0x7f.1/',
    'http://127.1/',
    'http://127.0.0.1./',
    'http://%31%32%37.0.0.1/',
    'http://①②⑦.0.0.1/',
    'http://[::1]/',
    'http://[0:0:0:0:0:0:0:1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[0:0:0:0:0:ffff:127.0.0.1]/',
    'http://[64:ff9b::127.0.0.1]/',
    'https://user:pass@0x7F.0.0.1:8443/path',
  ])('%s normalises to an address classified loopback', (url) => {
    expect(urlHostCategory(url)).toBe('loopback');
  });

  it.each(['http://0/', 'http://0.0.0.0/', 'http://[::]/'])(
    '%s normalises to the unspecified address',
    (url) => {
      expect(urlHostCategory(url)).toBe('unspecified');
    },
  );

  it('leaves names, including localhost with a trailing dot, to resolution', () => {
    expect(urlHostCategory('http://localhost./')).toBe('not-a-literal');
    expect(urlHostCategory('http://LOCALHOST/')).toBe('not-a-literal');
  });
});

describe('checkAddress', () => {
  const loopbackOnly = parseCidrList('127.0.0.0/8');

  it('refuses every forbidden category when nothing is allow-listed', () => {
    expect(checkAddress(ip('127.0.0.1'), [])).toEqual({ isAllowed: false, category: 'loopback' });
    expect(checkAddress(ip('10.0.0.5'), [])).toEqual({ isAllowed: false, category: 'private' });
    expect(checkAddress(ip('93.184.215.14'), [])).toEqual({ isAllowed: true });
  });

  it('opens exactly the allow-listed ranges', () => {
    expect(checkAddress(ip('127.0.0.1'), loopbackOnly)).toEqual({ isAllowed: true });
    expect(checkAddress(ip('127.8.9.10'), loopbackOnly)).toEqual({ isAllowed: true });
    expect(checkAddress(ip('::1'), loopbackOnly)).toEqual({ isAllowed: false, category: 'loopback' });
    expect(checkAddress(ip('10.0.0.5'), loopbackOnly)).toEqual({ isAllowed: false, category: 'private' });
    expect(checkAddress(ip('::1'), parseCidrList('::1/128'))).toEqual({ isAllowed: true });
  });

  it('treats an IPv4-mapped address as its IPv4 address for the allow-list, but not NAT64 or 6to4', () => {
    expect(checkAddress(ip('::ffff:127.0.0.1'), loopbackOnly)).toEqual({ isAllowed: true });
    expect(checkAddress(ip('64:ff9b::127.0.0.1'), loopbackOnly)).toMatchObject({ isAllowed: false });
    expect(checkAddress(ip('2002:7f00:1::'), loopbackOnly)).toMatchObject({ isAllowed: false });
  });

  it('keeps cloud metadata endpoints closed even under an allow-list that covers them', () => {
    const everything = parseCidrList('0.0.0.0/0, ::/0');
    for (const text of ['169.254.169.254', '100.100.100.200', 'fd00:ec2::254', '::ffff:169.254.169.254']) {
      expect(checkAddress(ip(text), everything)).toEqual({ isAllowed: false, category: 'metadata' });
    }
    expect(checkAddress(ip('169.254.1.1'), everything)).toEqual({ isAllowed: true });
  });
});

import fc from 'fast-check';

// fast-check arbitraries that spell one forbidden address in many ways, for SSRF tests
// (RELIABILITY.md S1). Targets are only ever on this host: the canary 127.0.0.2, other 127/8
// addresses, 0.0.0.0, ::1 and the IPv4-mapped / IPv4-compatible forms of those. fast-check's own
// ipV4Extended() and ipV6() are used for their shapes only (how many parts, which radix, how many
// leading zeros, where `::` sits); their random values are never put in a URL, so nothing generated
// here can point at a host off this machine.

/** A destination as WHATWG URL serialises it: `127.0.0.2` or `[::ffff:7f00:2]`. */
export type Target = { family: 4; value: number } | { family: 6; value: bigint };

const canary: Target = { family: 4, value: 0x7f_00_00_02 };

const ipv4Loopback = fc.oneof(
  { weight: 4, arbitrary: fc.constant(canary.value as number) },
  // Any other 127/8 address; 127.0.0.1 itself is the allowed test host.
  {
    weight: 4,
    arbitrary: fc.integer({ min: 0x7f_00_00_00, max: 0x7f_ff_ff_ff }).filter((v) => v !== 0x7f_00_00_01),
  },
  { weight: 1, arbitrary: fc.constant(0) }, // 0.0.0.0: Linux connects it to the local host
);

/** IPv4 targets of the policy's loopback and unspecified ranges. */
export const ipv4Targets: fc.Arbitrary<Target> = ipv4Loopback.map((value) => ({ family: 4, value }));

/** ::1, and IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) forms of the IPv4 targets. */
export const ipv6Targets: fc.Arbitrary<Target> = fc
  .oneof(
    { weight: 1, arbitrary: fc.constant(1n) },
    { weight: 3, arbitrary: ipv4Loopback.map((v) => 0xffff_0000_0000n | BigInt(v)) },
    { weight: 1, arbitrary: ipv4Loopback.map((v) => BigInt(v)) },
  )
  .map((value) => ({ family: 6, value }));

/** How WHATWG URL writes the target's host; every spelling of it must parse to exactly this. */
export function canonicalHost(target: Target): string {
  const text =
    target.family === 4 ? ipv4Bytes(target.value).join('.') : `[${groupsOf(target.value).join(':')}]`;
  return new URL(`http://${text}/`).hostname;
}

function ipv4Bytes(value: number): number[] {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff);
}

function groupsOf(value: bigint): string[] {
  return Array.from({ length: 8 }, (_, index) =>
    ((value >> BigInt(112 - 16 * index)) & 0xffffn).toString(16),
  );
}

// --- IPv4: 1 to 4 parts, each decimal, octal or hex --------------------------------------------------

/** How one part of a legacy IPv4 host is written. `width` pads octal and hex digits with zeros. */
type PartShape = { radix: 10 | 8 | 16; width: number; prefix: '0x' | '0X'; isUpperCase: boolean };

/** The parts of `value` for a host of `count` parts: leading bytes, then the rest as one number. */
function partsOf(value: number, count: number): number[] {
  const bytes = ipv4Bytes(value);
  const lastBytes = bytes.slice(count - 1);
  const last = lastBytes.reduce((total, byte) => total * 256 + byte, 0);
  return [...bytes.slice(0, count - 1), last];
}

function spellPart(value: number, shape: PartShape): string {
  if (shape.radix === 10) return String(value); // a leading zero would make it octal
  const digits = value.toString(shape.radix).padStart(shape.width, '0');
  if (shape.radix === 8) return `0${digits}`;
  return `${shape.prefix}${shape.isUpperCase ? digits.toUpperCase() : digits}`;
}

function spellIpv4(value: number, shapes: readonly PartShape[]): string {
  return partsOf(value, shapes.length)
    .map((part, index) => spellPart(part, shapes[index] as PartShape))
    .join('.');
}

const partShape: fc.Arbitrary<PartShape> = fc.record({
  radix: fc.constantFrom<10 | 8 | 16>(10, 8, 16),
  width: fc.integer({ min: 0, max: 6 }),
  prefix: fc.constantFrom<'0x' | '0X'>('0x', '0X'),
  isUpperCase: fc.boolean(),
});

/** Characters WHATWG maps back to ASCII before IPv4 parsing: percent-encoding and full-width forms. */
type Disguise = 'none' | 'percent' | 'fullwidth' | 'ideographic_dot';

function disguise(char: string, how: Disguise): string {
  if (how === 'percent') return `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
  if (how === 'fullwidth') return String.fromCharCode(char.charCodeAt(0) + 0xfee0);
  if (how === 'ideographic_dot' && char === '.') return '\u3002';
  return char;
}

function disguiseHost(host: string, choices: readonly Disguise[]): string {
  return [...host].map((char, index) => disguise(char, choices[index % choices.length] ?? 'none')).join('');
}

const disguises = fc.array(
  fc.constantFrom<Disguise>('none', 'none', 'none', 'percent', 'fullwidth', 'ideographic_dot'),
  { minLength: 1, maxLength: 16 },
);

/** Hand-shaped IPv4 hosts: 1–4 parts, any radix per part, leading zeros, trailing dot, disguises. */
export const ipv4Spellings = (targets: fc.Arbitrary<Target> = ipv4Targets): fc.Arbitrary<Spelling> =>
  fc
    .record({
      target: targets,
      shapes: fc.array(partShape, { minLength: 1, maxLength: 4 }),
      hasTrailingDot: fc.boolean(),
      isDisguised: fc.boolean(),
      disguises,
    })
    .map(({ target, shapes, hasTrailingDot, isDisguised, disguises: choices }) => {
      const host = `${spellIpv4(target.value as number, shapes)}${hasTrailingDot ? '.' : ''}`;
      return { target, host: isDisguised ? disguiseHost(host, choices) : host };
    });

/** fc.ipV4Extended()'s shape (part count, radix, zero padding) applied to a forbidden target. */
export const fcIpv4ShapedSpellings = (targets: fc.Arbitrary<Target> = ipv4Targets): fc.Arbitrary<Spelling> =>
  fc.tuple(targets, fc.ipV4Extended()).map(([target, shapeSource]) => ({
    target,
    host: spellIpv4(target.value as number, shapeSource.split('.').map(shapeOfPart)),
  }));

function shapeOfPart(part: string): PartShape {
  const hex = /^(0[xX])(.*)$/.exec(part);
  if (hex) {
    const digits = hex[2] ?? '';
    return {
      radix: 16,
      width: digits.length,
      prefix: hex[1] as '0x' | '0X',
      isUpperCase: /[A-F]/.test(digits),
    };
  }
  if (part.length > 1 && part.startsWith('0')) {
    return { radix: 8, width: part.length - 1, prefix: '0x', isUpperCase: false };
  }
  return { radix: 10, width: 0, prefix: '0x', isUpperCase: false };
}

// --- IPv6: groups, `::` over a run of zeros, zero padding, case, dotted IPv4 tail -----------------------

type Ipv6Shape = {
  hasIpv4Tail: boolean;
  /** Digits per group (cycled); a group is never written shorter than its value needs. */
  widths: readonly number[];
  upperCase: readonly boolean[];
  /** undefined: no `::`; otherwise picks which run of zero groups it replaces. */
  gapNear: number | undefined;
  /** Replace the whole run of zeros, or only its first `gapLength` groups (at least one). */
  gapLength: number;
};

/** Runs of consecutive zero groups, as [start, length], among the first `count` groups. */
function zeroRuns(groups: readonly number[], count: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (let index = 0; index < count; index++) {
    if (groups[index] !== 0) continue;
    const last = runs.at(-1);
    if (last && last[0] + last[1] === index) last[1] += 1;
    else runs.push([index, 1]);
  }
  return runs;
}

function spellIpv6(value: bigint, shape: Ipv6Shape): string {
  const groups = groupsOf(value).map((group) => Number.parseInt(group, 16));
  const hexCount = shape.hasIpv4Tail ? 6 : 8;
  const written = groups.slice(0, hexCount).map((group, index) => {
    const digits = group.toString(16).padStart(shape.widths[index % shape.widths.length] ?? 1, '0');
    return shape.upperCase[index % shape.upperCase.length] ? digits.toUpperCase() : digits;
  });
  if (shape.hasIpv4Tail) written.push(ipv4Bytes(Number(value & 0xffff_ffffn)).join('.'));
  const runs = zeroRuns(groups, hexCount);
  const gapNear = shape.gapNear;
  if (gapNear === undefined || runs.length === 0) return written.join(':');
  const [start, length] = runs.reduce((best, run) =>
    Math.abs(run[0] - gapNear) < Math.abs(best[0] - gapNear) ? run : best,
  );
  const gap = Math.max(1, Math.min(length, shape.gapLength));
  return `${written.slice(0, start).join(':')}::${written.slice(start + gap).join(':')}`;
}

/** Hand-shaped IPv6 hosts for ::1 and the mapped / compatible forms, bracketed for a URL. */
export const ipv6Spellings = (targets: fc.Arbitrary<Target> = ipv6Targets): fc.Arbitrary<Spelling> =>
  fc
    .record({
      target: targets,
      hasIpv4Tail: fc.boolean(),
      widths: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 8 }),
      upperCase: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
      gapNear: fc.option(fc.integer({ min: 0, max: 7 }), { freq: 4 }),
      gapLength: fc.integer({ min: 1, max: 8 }),
    })
    .map(({ target, gapNear, ...shape }) => ({
      target,
      host: `[${spellIpv6(target.value as bigint, { ...shape, gapNear: gapNear ?? undefined })}]`,
    }));

/** fc.ipV6()'s shape (IPv4 tail, group widths, where `::` sits) applied to a forbidden target. */
export const fcIpv6ShapedSpellings = (targets: fc.Arbitrary<Target> = ipv6Targets): fc.Arbitrary<Spelling> =>
  fc.tuple(targets, fc.ipV6()).map(([target, shapeSource]) => ({
    target,
    host: `[${spellIpv6(target.value as bigint, shapeOfIpv6(shapeSource))}]`,
  }));

function shapeOfIpv6(text: string): Ipv6Shape {
  const tokens = text.split(':');
  const hexTokens = tokens.filter((token) => token !== '' && !token.includes('.'));
  const gapAt = text.indexOf('::');
  return {
    hasIpv4Tail: text.includes('.'),
    widths: hexTokens.length > 0 ? hexTokens.map((token) => token.length) : [1],
    upperCase: [false],
    gapNear: gapAt === -1 ? undefined : text.slice(0, gapAt).split(':').filter(Boolean).length,
    gapLength: 8,
  };
}

// --- URLs ------------------------------------------------------------------------------------------

/** A host spelling and the address it denotes. */
export type Spelling = { target: Target; host: string };

export type SpelledUrl = { url: string; target: Target; host: string };

/** Every generator above, IPv4 and IPv6, hand-shaped and fast-check-shaped, in one arbitrary. */
export const forbiddenSpellings: fc.Arbitrary<Spelling> = fc.oneof(
  ipv4Spellings(),
  fcIpv4ShapedSpellings(),
  ipv6Spellings(),
  fcIpv6ShapedSpellings(),
);

/**
 * Wraps host spellings into URLs: http or https in any case, sometimes a userinfo that looks like a
 * name, mostly `port` (where the test's canary listens) and sometimes the scheme's default port.
 */
export const urlsOf = (spellings: fc.Arbitrary<Spelling>, port: number): fc.Arbitrary<SpelledUrl> =>
  fc
    .record({
      spelling: spellings,
      scheme: fc.constantFrom('http', 'https', 'HTTP', 'hTtPs'),
      userinfo: fc.constantFrom('', '', 'images.test@', 'user:pass@'),
      port: fc.constantFrom(`:${port}`, `:${port}`, `:${port}`, ''),
      path: fc.constantFrom('/', '/image.png', '/hooks?event=1'),
    })
    .map(({ spelling, scheme, userinfo, port: portText, path }) => ({
      url: `${scheme}://${userinfo}${spelling.host}${portText}${path}`,
      target: spelling.target,
      host: spelling.host,
    }));

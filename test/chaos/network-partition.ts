// A network namespace joined to the root namespace by one veth pair, for partitioning a process from
// Redis (RELIABILITY.md Q5b): the process runs inside the namespace and reaches Redis at the host
// side's address; taking the host side down cuts it off, bringing it up heals. Addresses come from a
// small test-only subnet; the only traffic is between this host and the namespace the test created.
// Needs root (CAP_NET_ADMIN); netnsUnavailableReason() says why not, so a test can skip.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readlinkSync } from 'node:fs';

export type PartitionedNamespace = {
  name: string;
  /** The host side's address: what a server in the root namespace binds for the namespace to reach. */
  hostAddress: string;
  /** The address of the namespace's side. */
  peerAddress: string;
  hostLink: string;
  /** Runs a command inside the namespace; it execs, so the child's pid is the command's own. */
  commandPrefix: readonly string[];
  /** Takes the host side of the veth down: packets between the two sides are dropped, nothing is reset. */
  cut(): void;
  heal(): void;
  /** Deletes the namespace (and with it the veth pair) and the host side if it survived; idempotent. */
  remove(): void;
};

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Undefined when this process may create network namespaces; else why not (for a skip message). */
export function netnsUnavailableReason(): string | undefined {
  const probe = `clipmod-probe-${randomBytes(4).toString('hex')}`;
  const added = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (added.error) return `iproute2 is not installed (${added.error.message})`;
  if (added.status !== 0) return `ip netns add failed (needs root/CAP_NET_ADMIN): ${added.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

/** A /30 in 10.231.0.0/16 that no local interface uses yet. */
function freeSubnet(): { host: string; peer: string } {
  const inUse = execFileSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' });
  for (let tries = 0; tries < 20; tries += 1) {
    const third = randomInt(0, 256);
    const base = randomInt(0, 64) * 4;
    const host = `10.231.${third}.${base + 1}`;
    if (!inUse.includes(`10.231.${third}.`)) return { host, peer: `10.231.${third}.${base + 2}` };
  }
  throw new Error('no free /30 in 10.231.0.0/16 for the test namespace');
}

export function createPartitionedNamespace(): PartitionedNamespace {
  const id = randomBytes(4).toString('hex');
  const name = `clipmod-part-${id}`;
  // Interface names are at most 15 characters.
  const hostLink = `cmp${id}h`;
  const peerLink = `cmp${id}n`;
  const { host, peer } = freeSubnet();
  const remove = () => {
    spawnSync('ip', ['netns', 'del', name]);
    spawnSync('ip', ['link', 'del', hostLink]);
  };
  try {
    ip('netns', 'add', name);
    ip('link', 'add', hostLink, 'type', 'veth', 'peer', 'name', peerLink);
    ip('link', 'set', peerLink, 'netns', name);
    ip('addr', 'add', `${host}/30`, 'dev', hostLink);
    ip('link', 'set', hostLink, 'up');
    ip('-n', name, 'addr', 'add', `${peer}/30`, 'dev', peerLink);
    ip('-n', name, 'link', 'set', peerLink, 'up');
    ip('-n', name, 'link', 'set', 'lo', 'up');
  } catch (error) {
    remove();
    throw error;
  }
  return {
    name,
    hostAddress: host,
    peerAddress: peer,
    hostLink,
    commandPrefix: ['ip', 'netns', 'exec', name],
    cut: () => ip('link', 'set', hostLink, 'down'),
    heal: () => ip('link', 'set', hostLink, 'up'),
    remove,
  };
}

/** The network namespace a process runs in (`net:[inode]`), to check it really is the test's. */
export function networkNamespaceOf(pid: number | 'self'): string {
  return readlinkSync(`/proc/${pid}/ns/net`);
}

import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import net, { type LookupFunction } from 'node:net';

// A process-wide trap for outgoing TCP connections, for SSRF tests: every socket whose destination is
// not an allowed address is recorded and destroyed before connect(2), so a policy bypass fails the test
// without a single packet leaving for the forbidden host. It wraps net.Socket.prototype.connect rather
// than listening on the `net.client.socket` diagnostics channel: that channel only sees net.connect(),
// while https (tls.connect) and IP-literal hosts (no 'lookup' event) would slip past it.

export type SocketTrap = {
  /** `host -> address` for every connection refused, in order. Empty when nothing tried. */
  readonly trapped: string[];
  /** Restores the original connect; sockets already opened keep their checks. */
  stop(): void;
};

type ConnectOptions = { port?: number; host?: string; path?: string | null; lookup?: LookupFunction };

/** One text per address however it is spelled: WHATWG's canonical host (`::ffff:7f00:1`, `127.0.0.1`). */
function canonicalHost(address: string): string {
  const unzoned = address.replace(/%.*$/, '');
  try {
    return new URL(`http://${net.isIPv6(unzoned) ? `[${unzoned}]` : unzoned}/`).hostname;
  } catch {
    return address;
  }
}

/**
 * The options object connect() will act on. net.connect passes one normalised [options, callback]
 * array and tls.connect an options object; the (port, host, callback) form is rewritten into an object
 * so that its lookup can be guarded too.
 */
function asOptionsCall(args: unknown[]): { options: ConnectOptions; args: unknown[] } {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (typeof first === 'object' && first !== null) return { options: first as ConnectOptions, args };
  if (typeof first === 'string' && !/^\d+$/.test(first)) return { options: { path: first }, args };
  const options: ConnectOptions = { port: Number(first) };
  if (typeof args[1] === 'string') options.host = args[1];
  const callback = args.find((arg) => typeof arg === 'function');
  return { options, args: callback === undefined ? [options] : [options, callback] };
}

/**
 * Starts trapping connections to anything but `allowedAddresses` (IPv4-mapped spellings of an allowed
 * IPv4 address count as allowed: a dual-stack socket reaches exactly that host). Call stop() after.
 */
export function startSocketTrap(allowedAddresses: readonly string[]): SocketTrap {
  const allowed = new Set(
    allowedAddresses.flatMap((address) =>
      net.isIPv4(address)
        ? [canonicalHost(address), canonicalHost(`::ffff:${address}`)]
        : [canonicalHost(address)],
    ),
  );
  const isAllowed = (address: string) => allowed.has(canonicalHost(address));
  const trapped: string[] = [];
  const originalConnect = net.Socket.prototype.connect;

  /** The caller's lookup (dns.lookup by default), refusing any answer off the allowed addresses. */
  const guardedLookup =
    (original: LookupFunction): LookupFunction =>
    (hostname, options, callback) => {
      original(hostname, options, (error, address, family) => {
        if (error) return callback(error, address, family);
        const answers = Array.isArray(address)
          ? (address as LookupAddress[]).map((entry) => entry.address)
          : [address];
        const refused = answers.filter((answer) => !isAllowed(answer));
        if (refused.length === 0) return callback(null, address, family);
        trapped.push(...refused.map((answer) => `${hostname} -> ${answer}`));
        callback(
          Object.assign(new Error(`socket trap: ${hostname} resolved off the allow-list`), {
            code: 'ETRAPPED',
          }),
          '',
        );
      });
    };

  function trappedConnect(this: net.Socket, ...given: unknown[]): net.Socket {
    const { options, args } = asOptionsCall(given);
    // Like net itself, only a non-empty path means a local (IPC) socket; http passes `path: null`.
    if (!options.path) {
      const host = options.host ?? 'localhost';
      if (net.isIP(host) !== 0 && !isAllowed(host)) {
        trapped.push(`${host} -> ${host}`);
        process.nextTick(() => this.destroy(new Error(`socket trap: ${host} is off the allow-list`)));
        return this;
      }
      if (net.isIP(host) === 0) {
        options.lookup = guardedLookup(options.lookup ?? (dnsLookup as LookupFunction));
      }
    }
    return (originalConnect as (...connectArgs: unknown[]) => net.Socket).apply(this, args);
  }

  net.Socket.prototype.connect = trappedConnect as typeof net.Socket.prototype.connect;
  return {
    trapped,
    stop: () => {
      net.Socket.prototype.connect = originalConnect;
    },
  };
}

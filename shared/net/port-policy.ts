// Which ports an outgoing request may use. Images and webhooks live on web servers; the ports below
// belong to databases, caches, mail, remote shells and orchestration APIs, which an SSRF reaches by
// speaking HTTP at them (Redis, memcached and SMTP all accept line protocols that survive an HTTP
// preamble). They are refused before any lookup or connect, on every hop, whatever the address:
// no allow-list entry makes a customer image live on :6379.

import { ClipmodError } from '../errors/index.ts';

/** Well-known internal-service ports, refused even on allow-listed networks. */
export const forbiddenPorts: ReadonlySet<number> = new Set([
  // Below 1024 only 80 and 443 pass (see isPortAllowed); these are the unprivileged ones.
  1433, // SQL Server
  1521, // Oracle
  2049, // NFS
  2375, // Docker API (plain)
  2376, // Docker API (TLS)
  2379, // etcd client
  2380, // etcd peer
  3306, // MySQL
  4369, // Erlang port mapper (RabbitMQ)
  5432, // PostgreSQL
  5672, // AMQP
  5984, // CouchDB
  6379, // Redis
  6443, // Kubernetes API
  8500, // Consul
  9042, // Cassandra
  9200, // Elasticsearch HTTP
  9300, // Elasticsearch transport
  10250, // kubelet
  11211, // memcached
  15672, // RabbitMQ management
  16379, // Redis Cluster bus
  26379, // Redis Sentinel
  27017, // MongoDB
]);

/** The port a URL connects to, its scheme's default when the URL names none. */
export function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

/** 80, 443, and unprivileged ports that no common internal service listens on. */
export function isPortAllowed(port: number): boolean {
  if (port === 80 || port === 443) return true;
  return port >= 1024 && port <= 65535 && !forbiddenPorts.has(port);
}

/** Throws url_forbidden (reason forbidden_port) for a URL whose port the policy refuses. */
export function assertPortAllowed(url: URL, hop = 0): void {
  const port = portOf(url);
  if (isPortAllowed(port)) return;
  throw new ClipmodError(
    'url_forbidden',
    `URL port ${port} is not allowed; use 80, 443 or a port above 1023`,
    {
      details: { reason: 'forbidden_port', port, hop },
    },
  );
}

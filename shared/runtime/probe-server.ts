import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { Component } from './lifecycle.ts';
import { evaluateReadiness, type ReadinessCheck } from './readiness.ts';

export type ProbeServerOptions = {
  host: string;
  port: number;
  registry: Registry;
  isStarted: () => boolean;
  checks: readonly ReadinessCheck[];
};

/** /livez, /readyz and /metrics for processes that have no API (inference and webhook workers). */
export function createProbeServer(options: ProbeServerOptions): Component & { port(): number } {
  let server: Server | undefined;
  return {
    name: 'probe-server',
    port: () => {
      const address = server?.address();
      return typeof address === 'object' && address ? address.port : 0;
    },
    async start() {
      server = createServer((req, res) => {
        void answerProbe(req.url ?? '/', options).then(({ status, type, body }) => {
          res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
        });
      });
      await new Promise<void>((resolve, reject) => {
        server?.once('error', reject);
        server?.listen(options.port, options.host, resolve);
      });
    },
    async stop() {
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    },
  };
}

async function answerProbe(url: string, options: ProbeServerOptions) {
  const path = url.split('?')[0];
  if (path === '/livez') return { status: 200, type: 'application/json', body: '{"status":"live"}' };
  if (path === '/readyz') {
    const report = await evaluateReadiness(options.isStarted(), options.checks);
    return {
      status: report.status === 'ready' ? 200 : 503,
      type: 'application/json',
      body: JSON.stringify(report),
    };
  }
  if (path === '/metrics') {
    return { status: 200, type: options.registry.contentType, body: await options.registry.metrics() };
  }
  return { status: 404, type: 'application/problem+json', body: '{"status":404,"code":"not_found"}' };
}

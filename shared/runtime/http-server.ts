import { createServer, type RequestListener, type Server } from 'node:http';
import type { Component } from './lifecycle.ts';

/**
 * An HTTP server as a lifecycle component. stop() refuses new connections, closes idle keep-alive
 * sockets and waits for in-flight requests to finish (the lifecycle's deadline bounds the wait).
 */
export function createHttpServerComponent(options: {
  name: string;
  host: string;
  port: number;
  handler: RequestListener;
}): Component & { server: Server; port(): number } {
  const server = createServer({ keepAliveTimeout: 5_000, requestTimeout: 120_000 }, options.handler);
  return {
    name: options.name,
    server,
    port: () => {
      const address = server.address();
      return typeof address === 'object' && address ? address.port : 0;
    },
    start: () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.host, () => {
          server.off('error', reject);
          resolve();
        });
      }),
    stop: () =>
      new Promise<void>((resolve, reject) => {
        // close() only drops connections idle right now; a keep-alive connection whose in-flight
        // request finishes later would hold the server open until keepAliveTimeout, so sweep again.
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        server.close((error) => {
          clearInterval(sweep);
          return error ? reject(error) : resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactUrl } from '../../shared/logger/index.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  return { lines, destination };
}

describe('logger', () => {
  it('writes JSON lines with level labels and redacts secrets at any depth', async () => {
    const { lines, destination } = capture();
    const logger = createLogger({ destination, name: 'api' });
    logger.info(
      { req: { headers: { authorization: 'Bearer sk-live-123' } }, endpoint: { secret: 'whsec_abc' } },
      'hello',
    );
    await new Promise((resolve) => setImmediate(resolve));
    const line = lines[0] as Record<string, any>;
    expect(line.level).toBe('info');
    expect(line.service).toBe('api');
    expect(line.req.headers.authorization).toBe('[redacted]');
    expect(line.endpoint.secret).toBe('[redacted]');
    expect(JSON.stringify(line)).not.toContain('sk-live-123');
  });

  it('removes passwords from URLs', () => {
    expect(redactUrl('redis://:hunter2@cache:6379/0')).toBe('redis://:redacted@cache:6379/0');
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });
});

import { describe, expect, it } from 'vitest';
import { type Component, Lifecycle } from '../../shared/runtime/lifecycle.ts';

const silent = { info: () => {}, error: () => {} };

function recorder(events: string[], name: string, stop: () => Promise<void> = async () => {}): Component {
  return {
    name,
    start: async () => {
      events.push(`start:${name}`);
    },
    stop: async () => {
      events.push(`stop:${name}`);
      await stop();
    },
  };
}

describe('Lifecycle', () => {
  it('starts in order, stops in reverse order, and is ready only in between', async () => {
    const events: string[] = [];
    const lifecycle = new Lifecycle({ stopTimeoutMs: 1000, logger: silent });
    lifecycle.add(recorder(events, 'redis')).add(recorder(events, 'http'));
    expect(lifecycle.isReady).toBe(false);
    await lifecycle.start();
    expect(lifecycle.isReady).toBe(true);
    const stopping = lifecycle.stop();
    expect(lifecycle.isReady).toBe(false);
    await stopping;
    expect(events).toEqual(['start:redis', 'start:http', 'stop:http', 'stop:redis']);
  });

  it('attempts every stop even when one fails or hangs past its deadline', async () => {
    const events: string[] = [];
    const lifecycle = new Lifecycle({ stopTimeoutMs: 50, logger: silent });
    lifecycle
      .add(recorder(events, 'a'))
      .add(recorder(events, 'hangs', () => new Promise(() => {})))
      .add(recorder(events, 'fails', async () => Promise.reject(new Error('boom'))));
    await lifecycle.start();
    const reports = await lifecycle.stop();
    expect(reports.map((r) => [r.name, r.outcome])).toEqual([
      ['fails', 'failed'],
      ['hangs', 'timed-out'],
      ['a', 'stopped'],
    ]);
    expect(reports[0]?.error).toBe('boom');
  });

  it('stops only once however often stop() is called', async () => {
    const events: string[] = [];
    const lifecycle = new Lifecycle({ stopTimeoutMs: 1000, logger: silent });
    lifecycle.add(recorder(events, 'x'));
    await lifecycle.start();
    const [first, second] = await Promise.all([lifecycle.stop(), lifecycle.stop()]);
    expect(first).toBe(second);
    expect(events.filter((e) => e === 'stop:x')).toHaveLength(1);
  });

  it('stops the failed component and those started before it when one fails to start', async () => {
    const events: string[] = [];
    const lifecycle = new Lifecycle({ stopTimeoutMs: 1000, logger: silent });
    lifecycle
      .add(recorder(events, 'first'))
      .add({
        name: 'broken',
        start: async () => Promise.reject(new Error('no model')),
        stop: async () => {
          events.push('stop:broken');
        },
      })
      .add(recorder(events, 'never'));
    await expect(lifecycle.start()).rejects.toThrow('no model');
    expect(events).toEqual(['start:first', 'stop:broken', 'stop:first']);
    expect(lifecycle.isReady).toBe(false);
  });
});

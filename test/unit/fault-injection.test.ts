import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/index.ts';
import { isClipmodError } from '../../shared/errors/index.ts';
import { createFaultInjector, faultMetadataKey } from '../../shared/runtime/index.ts';

// The test-only crash hook must be impossible to switch on in production, and inert without both
// the process setting and the per-submission metadata (the crashing path itself runs in test/chaos).

describe('CLIPMOD_FAULT_INJECTION', () => {
  it('is refused when NODE_ENV=production', () => {
    const error = (() => {
      try {
        loadConfig({ CLIPMOD_FAULT_INJECTION: '1', NODE_ENV: 'production' });
      } catch (caught) {
        return caught;
      }
    })();
    expect(isClipmodError(error) && error.code).toBe('invalid_config');
  });

  it('is off by default and accepted outside production', () => {
    expect(loadConfig({}).CLIPMOD_FAULT_INJECTION).toBe(false);
    expect(loadConfig({ CLIPMOD_FAULT_INJECTION: '1', NODE_ENV: 'test' }).CLIPMOD_FAULT_INJECTION).toBe(true);
  });

  it('never crashes a process without the setting, nor without the metadata', () => {
    const request = { [faultMetadataKey]: 'inference-crash' };
    createFaultInjector(false).crashIfRequested(request, 'inference-crash');
    createFaultInjector(true).crashIfRequested({}, 'inference-crash');
    createFaultInjector(true).crashIfRequested(undefined, 'inference-crash');
    expect(process.exitCode ?? 0).toBe(0);
  });

  it('tells callers whether to look for crash points at all', () => {
    expect(createFaultInjector(false).isEnabled).toBe(false);
    expect(createFaultInjector(true).isEnabled).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { planExecutionProviders } from '../../shared/clip/execution-providers.ts';

const everything = ['cpu', 'webgpu', 'cuda', 'tensorrt'];

describe('planExecutionProviders', () => {
  it('tries tensorrt, then cuda, then cpu on auto when the build lists both GPU backends', () => {
    expect(planExecutionProviders('auto', everything)).toEqual([
      { provider: 'tensorrt', executionProviders: ['tensorrt', 'cuda', 'cpu'] },
      { provider: 'cuda', executionProviders: ['cuda', 'cpu'] },
      { provider: 'cpu', executionProviders: ['cpu'] },
    ]);
  });

  it('falls back to cpu alone on auto when no GPU backend is listed', () => {
    expect(planExecutionProviders('auto', ['cpu', 'webgpu'])).toEqual([
      { provider: 'cpu', executionProviders: ['cpu'] },
    ]);
  });

  it('skips a GPU backend the build does not list', () => {
    expect(planExecutionProviders('auto', ['cpu', 'cuda']).map((attempt) => attempt.provider)).toEqual([
      'cuda',
      'cpu',
    ]);
    expect(planExecutionProviders('auto', ['cpu', 'tensorrt'])).toEqual([
      { provider: 'tensorrt', executionProviders: ['tensorrt', 'cpu'] },
      { provider: 'cpu', executionProviders: ['cpu'] },
    ]);
  });

  it('uses cpu only when cpu is asked for, even with GPUs listed', () => {
    expect(planExecutionProviders('cpu', everything)).toEqual([
      { provider: 'cpu', executionProviders: ['cpu'] },
    ]);
  });

  it('gives an explicit GPU choice one attempt, keeping cpu for the nodes the GPU cannot run', () => {
    expect(planExecutionProviders('cuda', everything)).toEqual([
      { provider: 'cuda', executionProviders: ['cuda', 'cpu'] },
    ]);
    expect(planExecutionProviders('tensorrt', everything)).toEqual([
      { provider: 'tensorrt', executionProviders: ['tensorrt', 'cuda', 'cpu'] },
    ]);
  });

  it('refuses an explicit GPU choice the build lacks as a configuration error', () => {
    expect(() => planExecutionProviders('cuda', ['cpu'])).toThrow(
      expect.objectContaining({ code: 'invalid_config', message: expect.stringContaining("'cuda'") }),
    );
  });
});

import type { FetchProgressEvent } from './fetch-model.ts';

export type ProgressLine = {
  file: string;
  fileIndex: number;
  fileCount: number;
  bytesDone: number;
  bytesTotal: number;
  /** Undefined until enough time has passed for a meaningful rate. */
  bytesPerSecond: number | undefined;
};

export type FileDoneLine = {
  file: string;
  fileIndex: number;
  fileCount: number;
  bytesTotal: number;
  outcome: 'downloaded' | 'skipped';
  /** Bytes this run transferred (less than the total after a resume) and how long it took. */
  bytesTransferred: number;
  elapsedMs: number;
};

/** `[6/7] onnx/vision_model.onnx  42%  147.3 MB / 351.5 MB  12.4 MB/s  ETA 16s` */
export function formatProgressLine(line: ProgressLine): string {
  const fraction = line.bytesTotal > 0 ? Math.min(1, line.bytesDone / line.bytesTotal) : 1;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const amounts = `${formatBytes(line.bytesDone)} / ${formatBytes(line.bytesTotal)}`;
  const rate = line.bytesPerSecond;
  const hasRate = rate !== undefined && rate > 0;
  const speed = hasRate ? `${formatBytes(rate)}/s` : '-- MB/s';
  const remaining = Math.max(0, line.bytesTotal - line.bytesDone);
  const eta = hasRate ? formatDuration((remaining / rate) * 1000) : '--';
  return `${counter(line)} ${line.file}  ${percent}  ${amounts}  ${speed}  ETA ${eta}`;
}

/** `[6/7] onnx/vision_model.onnx  351.5 MB  done in 28s (12.6 MB/s)` or `… already present`. */
export function formatFileDone(line: FileDoneLine): string {
  const head = `${counter(line)} ${line.file}  ${formatBytes(line.bytesTotal)}`;
  if (line.outcome === 'skipped') return `${head}  already present`;
  const seconds = line.elapsedMs / 1000;
  const speed = seconds > 0 ? ` (${formatBytes(line.bytesTransferred / seconds)}/s)` : '';
  return `${head}  done in ${formatDuration(line.elapsedMs)}${speed}`;
}

/** Decimal units, as download sizes on the hub are shown. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 && unit >= 2 ? 2 : 1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  const totalSeconds = Math.round(ms / 1000);
  if (totalSeconds < 60) return `${totalSeconds}s`;
  const minutes = Math.floor(totalSeconds / 60);
  if (minutes < 60) return `${minutes}m${String(totalSeconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

function counter(line: { fileIndex: number; fileCount: number }): string {
  return line.fileIndex > 0 ? `[${line.fileIndex}/${line.fileCount}]` : '[hub]';
}

export type ProgressRendererOptions = {
  write: (text: string) => void;
  /** A terminal gets one redrawn line; a log file or pipe gets a few whole lines. */
  isTty: boolean;
  /** Terminal width: a redrawn line that wraps can no longer be overwritten with `\r`. */
  columns?: number | undefined;
  nowMs?: () => number;
  redrawIntervalMs?: number;
};

// Below this size a plain log gets only the "done" line; above it, one line per quarter.
const plainMilestoneMinBytes = 10_000_000;
// Rates measured over less than this are noise.
const minRateWindowMs = 250;

type FileClock = { startMs: number; startBytes: number; lastDrawMs: number; nextMilestone: number };

type RendererState = {
  options: ProgressRendererOptions;
  redrawIntervalMs: number;
  clock: FileClock;
};

/** Turns fetch progress events into stderr output; the clock is a parameter so tests control it. */
export function createProgressRenderer(
  options: ProgressRendererOptions,
): (event: FetchProgressEvent) => void {
  const nowMs = options.nowMs ?? (() => performance.now());
  const state: RendererState = {
    options,
    redrawIntervalMs: options.redrawIntervalMs ?? 100,
    clock: freshClock(nowMs(), 0),
  };
  return (event) => {
    const now = nowMs();
    if (event.kind === 'file-start') renderStart(state, event, now);
    else if (event.kind === 'file-bytes') renderBytes(state, event, now);
    else if (event.kind === 'file-done') renderDone(state, event, now);
    else renderRetry(state, event);
  };
}

type EventOf<K extends FetchProgressEvent['kind']> = Extract<FetchProgressEvent, { kind: K }>;

function freshClock(now: number, startBytes: number): FileClock {
  return { startMs: now, startBytes, lastDrawMs: Number.NEGATIVE_INFINITY, nextMilestone: 25 };
}

function renderStart(state: RendererState, event: EventOf<'file-start'>, now: number): void {
  state.clock = freshClock(now, event.resumeFromBytes);
  if (event.resumeFromBytes > 0) {
    writeLine(state, `${counter(event)} ${event.file}  resuming at ${formatBytes(event.resumeFromBytes)}`);
  }
}

function renderBytes(state: RendererState, event: EventOf<'file-bytes'>, now: number): void {
  const { clock, options } = state;
  const elapsedMs = now - clock.startMs;
  const transferred = event.bytesDone - clock.startBytes;
  const bytesPerSecond = elapsedMs >= minRateWindowMs ? (transferred / elapsedMs) * 1000 : undefined;
  const line = formatProgressLine({ ...event, bytesPerSecond });
  if (options.isTty) {
    if (now - clock.lastDrawMs < state.redrawIntervalMs) return;
    clock.lastDrawMs = now;
    options.write(`\r${fitToWidth(state, line)}\x1b[K`);
    return;
  }
  const percent = (event.bytesDone / Math.max(1, event.bytesTotal)) * 100;
  if (event.bytesTotal < plainMilestoneMinBytes || percent < clock.nextMilestone) return;
  clock.nextMilestone = (Math.floor(percent / 25) + 1) * 25;
  // The done line reports 100%, so a milestone line for it would only repeat it.
  if (percent < 100) options.write(`${line}\n`);
}

function renderDone(state: RendererState, event: EventOf<'file-done'>, now: number): void {
  const isSkipped = event.outcome === 'skipped';
  const elapsedMs = isSkipped ? 0 : now - state.clock.startMs;
  const bytesTransferred = isSkipped ? 0 : event.bytesTotal - state.clock.startBytes;
  writeLine(state, formatFileDone({ ...event, bytesTransferred, elapsedMs }));
}

function renderRetry(state: RendererState, event: EventOf<'retry'>): void {
  const delay = `${(event.delayMs / 1000).toFixed(1)}s`;
  const attempt = `attempt ${event.attempt}/${event.maxAttempts}`;
  writeLine(state, `${counter(event)} ${event.file}  ${event.reason}; retrying in ${delay} (${attempt})`);
}

/** A whole line; on a terminal it first overwrites the redrawn progress line. */
function writeLine(state: RendererState, line: string): void {
  const { options } = state;
  options.write(options.isTty ? `\r${fitToWidth(state, line)}\x1b[K\n` : `${line}\n`);
}

function fitToWidth(state: RendererState, line: string): string {
  const { columns } = state.options;
  return columns !== undefined && columns > 1 ? line.slice(0, columns - 1) : line;
}

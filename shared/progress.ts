/**
 * Progress on long work: a live bar on a terminal, plain lines otherwise (CI logs, pipes), so a log never fills
 * with carriage-return redraws. Writes to stderr; stdout stays for results.
 */
import cliProgress from 'cli-progress';

export interface ProgressReporter {
  update(done: number, fields?: Record<string, string>): void;
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  /** Force the bar (true) or plain lines (false); default: a bar when stderr is a terminal. */
  tty?: boolean;
  /** Plain mode: print at most this many lines over the whole run (default 20). */
  lines?: number;
  stream?: NodeJS.WriteStream;
}

export function createProgress(options: ProgressOptions): ProgressReporter {
  const stream = options.stream ?? process.stderr;
  const fields = (values: Record<string, string> = {}): string =>
    Object.entries(values)
      .map(([k, v]) => `${k} ${v}`)
      .join('  ');
  if (options.tty ?? stream.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${options.label} [{bar}] {value}/{total}  {fields}`,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(options.total, 0, { fields: '' });
    return {
      update: (done, values) => bar.update(done, { fields: fields(values) }),
      stop: () => bar.stop(),
    };
  }
  const every = Math.max(1, Math.ceil(options.total / (options.lines ?? 20)));
  let last = -1;
  let lastLine = '';
  return {
    update(done, values) {
      const line = `${options.label} ${done}/${options.total}  ${fields(values)}\n`;
      // At the end, a change of fields alone (a final evaluation after the last round) is printed too, so the
      // last line agrees with the summary that follows it.
      const final = done === options.total && (last !== done || line !== lastLine);
      if (final || Math.floor(done / every) !== Math.floor(last / every)) {
        stream.write(line);
        lastLine = line;
      }
      last = done;
    },
    stop() {},
  };
}

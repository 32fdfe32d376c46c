/**
 * Streaming text I/O shared by the JSONL and CSV formats: lines are read one at a time (a device's file may
 * not fit in one string), and output is written in ~1 MiB chunks rather than one write per row.
 */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';

/** The lines of a UTF-8 file with their 1-based numbers; CRLF and LF both end a line. */
export async function* readLines(path: string): AsyncGenerator<{ line: string; lineNo: number }, void, undefined> {
  // Opening first turns a missing file into an immediate ENOENT rather than an error from inside the stream.
  const handle = await open(path, 'r');
  const input = handle.createReadStream({ encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      // A byte-order mark is an encoding artefact, not part of the first field.
      yield { line: lineNo === 1 && line.charCodeAt(0) === 0xfeff ? line.slice(1) : line, lineNo };
    }
  } finally {
    lines.close();
    input.destroy();
    await handle.close().catch(() => undefined);
  }
}

export interface ChunkWriter {
  write(text: string): Promise<void>;
  close(): Promise<void>;
}

const CHUNK_CHARS = 1 << 20;

/** Creates (or truncates) `path` and returns a writer that batches small strings into large writes. */
export async function openChunkWriter(path: string): Promise<ChunkWriter> {
  const handle = await open(path, 'w');
  let parts: string[] = [];
  let pending = 0;
  const flush = async (): Promise<void> => {
    if (parts.length === 0) return;
    const text = parts.join('');
    parts = [];
    pending = 0;
    await handle.write(text, null, 'utf8');
  };
  return {
    async write(text: string): Promise<void> {
      parts.push(text);
      pending += text.length;
      if (pending >= CHUNK_CHARS) await flush();
    },
    async close(): Promise<void> {
      try {
        await flush();
      } finally {
        await handle.close();
      }
    },
  };
}

/** The name a file's errors start with. */
export function sourceName(path: string, name: string | undefined): string {
  return name ?? basename(path);
}

/**
 * A number's text form that reads back to the same float32: the shortest round-tripping double form, with
 * the sign of zero kept (String(-0) is "0").
 */
export function formatValue(value: number | bigint): string {
  if (typeof value === 'bigint') return value.toString();
  return Object.is(value, -0) ? '-0' : String(value);
}

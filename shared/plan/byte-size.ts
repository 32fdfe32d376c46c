/** Byte sizes as people write them: "512MiB", "1.5 GiB", "800MB", "2G", "1048576". */
import { PlanError } from './plan-error.js';

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kb: 1000, kib: 1024,
  m: 2 ** 20, mb: 1e6, mib: 2 ** 20,
  g: 2 ** 30, gb: 1e9, gib: 2 ** 30,
  t: 2 ** 40, tb: 1e12, tib: 2 ** 40,
};

export function parseByteSize(text: string): number {
  const match = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new PlanError(`${JSON.stringify(text)} is not a size; write e.g. 512MiB, 1.5GiB, 800MB or a byte count`);
  }
  const bytes = Math.round(Number(match[1]) * unit);
  if (!(bytes > 0) || !Number.isSafeInteger(bytes)) throw new PlanError(`${JSON.stringify(text)} must be a positive size`);
  return bytes;
}

/** "1.5 GiB", "312.4 MiB", "12.0 KiB", "512 B". */
export function formatBytes(bytes: number): string {
  const abs = Math.abs(bytes);
  if (abs >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (abs >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (abs >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

import { vi } from 'vitest';

/** Collects what is written to process.stderr (a CLI command's report lines) until `restore()`. */
export function captureStderr(): { readonly text: string; restore(): void } {
  let text = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    text += String(chunk);
    return true;
  });
  return {
    get text() {
      return text;
    },
    restore: () => spy.mockRestore(),
  };
}

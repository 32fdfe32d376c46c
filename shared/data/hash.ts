/**
 * FNV-1a, 32-bit (offset basis 0x811C9DC5, prime 0x01000193), over the UTF-8 bytes of a string.
 *
 * Hashed text features must be identical on every device, in every language a device might run, so the hash
 * is defined on bytes rather than on JavaScript's UTF-16 code units; ASCII (nearly every token) costs one
 * multiply per character and no allocation. Lone surrogates are hashed as U+FFFD, as a UTF-8 encoder would.
 */
export const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function mixByte(hash: number, byte: number): number {
  return Math.imul(hash ^ byte, FNV_PRIME) >>> 0;
}

/**
 * Continues an FNV-1a hash with the UTF-8 bytes of `text`. fnv1aUpdate(fnv1aUpdate(B, a), b) equals
 * fnv1a(a + b), which lets a caller hash "prefix + token" pairs without building the joined string.
 */
export function fnv1aUpdate(hash: number, text: string): number {
  let h = hash >>> 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      h = mixByte(h, c);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
      } else {
        c = 0xfffd;
      }
    } else if (c >= 0xd800 && c <= 0xdfff) {
      c = 0xfffd;
    }
    if (c < 0x800) {
      h = mixByte(h, 0xc0 | (c >> 6));
    } else if (c < 0x10000) {
      h = mixByte(h, 0xe0 | (c >> 12));
      h = mixByte(h, 0x80 | ((c >> 6) & 0x3f));
    } else {
      h = mixByte(h, 0xf0 | (c >> 18));
      h = mixByte(h, 0x80 | ((c >> 12) & 0x3f));
      h = mixByte(h, 0x80 | ((c >> 6) & 0x3f));
    }
    h = mixByte(h, 0x80 | (c & 0x3f));
  }
  return h;
}

/** FNV-1a 32-bit of the UTF-8 encoding of `text`, as an unsigned integer. fnv1a('a') === 0xE40C292C. */
export function fnv1a(text: string): number {
  return fnv1aUpdate(FNV_OFFSET_BASIS, text);
}

/**
 * Small single-channel image transforms for simulating per-device feature shift (a tilted camera, a thicker
 * pen, sensor noise). Images are row-major H×W float arrays; every function writes `dst` and never reads it,
 * so src and dst must be different arrays.
 */

/**
 * Rotates by `degrees` about the image centre ((W−1)/2, (H−1)/2), counter-clockwise as displayed (rows run
 * downwards). Each output pixel samples the source at the inverse-rotated position by bilinear interpolation;
 * positions outside the image read as 0 (background).
 */
export function rotateBilinear(
  src: ArrayLike<number>,
  dst: Float32Array,
  height: number,
  width: number,
  degrees: number,
): void {
  const theta = (degrees * Math.PI) / 180;
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  const at = (y: number, x: number): number => (y < 0 || y >= height || x < 0 || x >= width ? 0 : src[y * width + x]!);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const sx = cos * dx - sin * dy + cx;
      const sy = sin * dx + cos * dy + cy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx;
      const bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx;
      dst[y * width + x] = top * (1 - fy) + bottom * fy;
    }
  }
}

/**
 * Changes stroke thickness by `amount` in [−1, 1]: the image blended with its grey-level dilation (amount > 0,
 * thicker) or erosion (amount < 0, thinner) over the 4-neighbourhood cross; |amount| = 1 is one full step.
 */
export function changeThickness(
  src: ArrayLike<number>,
  dst: Float32Array,
  height: number,
  width: number,
  amount: number,
): void {
  const grow = amount > 0;
  const t = Math.min(1, Math.abs(amount));
  const pick = grow ? Math.max : Math.min;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      // Outside the image counts as background (0): erosion thins strokes that touch the border too.
      const up = y > 0 ? src[i - width]! : 0;
      const down = y < height - 1 ? src[i + width]! : 0;
      const left = x > 0 ? src[i - 1]! : 0;
      const right = x < width - 1 ? src[i + 1]! : 0;
      const m = pick(src[i]!, up, down, left, right);
      dst[i] = (1 - t) * src[i]! + t * m;
    }
  }
}

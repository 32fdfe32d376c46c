/**
 * Rényi-DP accounting of the Poisson-subsampled Gaussian mechanism over rounds.
 *
 * One round releases a sum of contributions clipped to L2 norm C plus N(0, σ²C²) noise, each party included
 * with probability q. Its RDP at integer order α is (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy
 * of the Sampled Gaussian Mechanism", section 3.3):
 *   ε(α) = log A_α / (α − 1),  A_α = Σ_{k=0..α} C(α, k) (1 − q)^{α−k} q^k exp((k² − k) / (2σ²)),
 * summed in log space so that large orders and small σ do not overflow. Without subsampling (q = 1) it is the
 * Gaussian's closed form α / (2σ²) (Mironov 2017), valid at fractional orders too. RDP composes by adding per
 * order over rounds; the (ε, δ) guarantee is the minimum over orders of the conversion of Canonne, Kamath and
 * Steinke 2020 (Prop. 12; the same bound as Balle et al. 2020, Thm. 21):
 *   ε = rdp(α) + log((α − 1)/α) − (log δ + log α) / (α − 1).
 * Subsampled orders are integers only (the binomial expansion needs them); the fractional ones are used when q = 1.
 */

/** Orders in the range accountants commonly use (TF-Privacy, Opacus): 1.25 … 512. */
export const DEFAULT_ORDERS: readonly number[] = [
  1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, ...Array.from({ length: 59 }, (_, i) => 5 + i), 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512,
];

function checkRate(q: number): void {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`samplingRate must be in [0, 1], got ${q}`);
}

function checkNoise(sigma: number): void {
  if (!(sigma > 0 && Number.isFinite(sigma))) throw new RangeError(`noiseMultiplier must be positive and finite, got ${sigma}`);
}

function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}

/**
 * RDP of one round of the sampled Gaussian at order α; NaN for a fractional order when 0 < q < 1 (not computed:
 * the caller skips such orders). q = 0 releases nothing about anyone: 0.
 */
export function sampledGaussianRdp(samplingRate: number, noiseMultiplier: number, order: number): number {
  checkRate(samplingRate);
  checkNoise(noiseMultiplier);
  if (!(order > 1)) throw new RangeError(`order must be above 1, got ${order}`);
  const q = samplingRate;
  const sigma2 = noiseMultiplier * noiseMultiplier;
  if (q === 0) return 0;
  if (q === 1) return order / (2 * sigma2);
  if (!Number.isInteger(order)) return Number.NaN;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logBinom = 0; // log C(α, 0)
  let logA = -Infinity;
  for (let k = 0; k <= order; k++) {
    if (k > 0) logBinom += Math.log(order - k + 1) - Math.log(k);
    logA = logAddExp(logA, logBinom + k * logQ + (order - k) * log1mQ + (k * k - k) / (2 * sigma2));
  }
  // A_α ≥ 1 in exact arithmetic; rounding can leave it a hair below.
  return Math.max(0, logA) / (order - 1);
}

/** (ε, δ) from an RDP curve: the smallest ε over the orders, and the order that gives it. */
export function rdpToEpsilon(orders: readonly number[], rdp: readonly number[], delta: number): { epsilon: number; order: number } {
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
  if (orders.length !== rdp.length) throw new RangeError('rdpToEpsilon: one rdp value per order');
  let best = { epsilon: Infinity, order: Number.NaN };
  orders.forEach((a, i) => {
    const r = rdp[i]!;
    if (Number.isNaN(r)) return;
    const eps = r + Math.log((a - 1) / a) - (Math.log(delta) + Math.log(a)) / (a - 1);
    if (eps < best.epsilon) best = { epsilon: Math.max(0, eps), order: a };
  });
  return best;
}

/** ε after `rounds` rounds at sampling rate q and noise multiplier σ, at δ. */
export function epsilonFor(samplingRate: number, noiseMultiplier: number, rounds: number, delta: number, orders: readonly number[] = DEFAULT_ORDERS): number {
  if (!(Number.isInteger(rounds) && rounds >= 0)) throw new RangeError(`rounds must be a non-negative integer, got ${rounds}`);
  const rdp = orders.map((a) => rounds * sampledGaussianRdp(samplingRate, noiseMultiplier, a));
  return rdpToEpsilon(orders, rdp, delta).epsilon;
}

/**
 * The smallest noise multiplier σ whose ε after `rounds` rounds at rate q is at most the target, found by
 * bisection on log σ (ε falls as σ grows) to a relative precision of 1e-4.
 */
export function noiseMultiplierFor(
  target: { epsilon: number; delta: number },
  samplingRate: number,
  rounds: number,
  orders: readonly number[] = DEFAULT_ORDERS,
): number {
  if (!(target.epsilon > 0 && Number.isFinite(target.epsilon))) throw new RangeError(`epsilon must be positive and finite, got ${target.epsilon}`);
  const eps = (sigma: number) => epsilonFor(samplingRate, sigma, rounds, target.delta, orders);
  let lo = 1e-2;
  let hi = 1;
  while (eps(hi) > target.epsilon) {
    lo = hi;
    hi *= 2;
    if (hi > 1e6) throw new RangeError(`no noise multiplier up to 1e6 reaches epsilon ${target.epsilon} at delta ${target.delta}`);
  }
  if (eps(lo) <= target.epsilon) return lo;
  while (hi / lo > 1 + 1e-4) {
    const mid = Math.sqrt(lo * hi);
    if (eps(mid) > target.epsilon) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** Running RDP totals over rounds, each round with its own sampling rate and noise multiplier. */
export class RdpAccountant {
  readonly orders: readonly number[];
  private readonly totals: number[];
  private steps = 0;

  constructor(orders: readonly number[] = DEFAULT_ORDERS) {
    if (orders.length === 0 || orders.some((a) => !(a > 1))) throw new RangeError('orders must be a non-empty list of numbers above 1');
    this.orders = [...orders];
    this.totals = this.orders.map(() => 0);
  }

  /** Rounds accounted so far. */
  get rounds(): number {
    return this.steps;
  }

  /** The RDP curve after one more round at (q, σ), without recording it. */
  private after(samplingRate: number, noiseMultiplier: number, count: number): number[] {
    return this.orders.map((a, i) => this.totals[i]! + count * sampledGaussianRdp(samplingRate, noiseMultiplier, a));
  }

  /** Records `count` rounds at sampling rate q and noise multiplier σ. */
  step(samplingRate: number, noiseMultiplier: number, count = 1): void {
    const next = this.after(samplingRate, noiseMultiplier, count);
    next.forEach((v, i) => (this.totals[i] = v));
    this.steps += count;
  }

  /** ε spent so far at δ. */
  epsilon(delta: number): number {
    if (this.steps === 0) return 0;
    return rdpToEpsilon(this.orders, this.totals, delta).epsilon;
  }

  /** ε at δ if one more round at (q, σ) were released. */
  epsilonAfter(samplingRate: number, noiseMultiplier: number, delta: number): number {
    return rdpToEpsilon(this.orders, this.after(samplingRate, noiseMultiplier, 1), delta).epsilon;
  }
}

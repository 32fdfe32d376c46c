/** L(θ) = ½ Σ w_i (θ_i − t_i)², whose gradient w ⊙ (θ − t) is known exactly: a loss to check estimators against. */
export function quadratic(dimension: number) {
  const weights = Float64Array.from({ length: dimension }, (_, i) => 0.5 + (i % 7) / 4);
  const target = Float64Array.from({ length: dimension }, (_, i) => Math.sin(i) * 0.3);
  const loss = (theta: Float32Array): number => {
    let sum = 0;
    for (let i = 0; i < dimension; i++) sum += 0.5 * weights[i]! * (theta[i]! - target[i]!) ** 2;
    return sum;
  };
  const gradient = (theta: Float32Array): Float64Array =>
    Float64Array.from({ length: dimension }, (_, i) => weights[i]! * (theta[i]! - target[i]!));
  return { loss, gradient };
}

// The AVX2 kernel (x86-64): Philox on eight blocks per 256-bit register, Box–Muller on eight pairs per register,
// then a 4×8 transpose so that consecutive slab elements are updated with whole-vector loads and stores.
//
// Only this file's functions use AVX2, through the target attribute, so the rest of the addon still runs on any
// x86-64 CPU; the addon calls in here only after __builtin_cpu_supports("avx2"). FMA is deliberately not enabled:
// every multiply and add is rounded on its own, as in the scalar definition (box_muller in noise-kernel.h), which
// the vector code reproduces bit for bit: the same operations on the same values in the same order.
//
// Speed comes from independence rather than from shortcuts: each Philox round and each Box–Muller step is a long
// chain of dependent instructions, so the bulk path works on four independent sets of eight blocks (128 elements)
// and issues their instructions side by side, keeping all vector pipes busy.
#include "noise-kernel.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>

#include <algorithm>

#define MEZO_AVX2 __attribute__((target("avx2")))
#define MEZO_AVX2_INLINE __attribute__((target("avx2"), always_inline)) inline
#define MEZO_UNROLL _Pragma("GCC unroll 16")

namespace mezo_noise {
namespace {

constexpr size_t kBlocksPerVector = 8;
constexpr size_t kGaussianPerVector = kBlocksPerVector * kGaussianPerBlock;      // 32 elements
constexpr size_t kRademacherPerVector = kBlocksPerVector * kRademacherPerBlock;  // 1024 elements
constexpr int kBulkVectors = 4;                                                    // 4 × 32 = 128 elements
constexpr size_t kGaussianBulk = kBulkVectors * kGaussianPerVector;

struct KeySchedule {
  __m256i k0[kPhiloxRounds];
  __m256i k1[kPhiloxRounds];
};

MEZO_AVX2_INLINE void make_key_schedule(uint32_t k0, uint32_t k1, KeySchedule& ks) {
  for (int round = 0; round < kPhiloxRounds; ++round) {
    ks.k0[round] = _mm256_set1_epi32(static_cast<int>(k0));
    ks.k1[round] = _mm256_set1_epi32(static_cast<int>(k1));
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
}

// ---- Philox ----------------------------------------------------------------------------------------------------
//
// Lane j of a set's vectors works on block base + L(j). The Rademacher path keeps the natural order, L(j) = j; the
// Gaussian path uses L = (0, 2, 4, 6 | 1, 3, 5, 7), which puts blocks 2i and 2i + 1 in the same lane i of the two
// 128-bit halves, exactly where the 4×8 transpose that follows Box–Muller wants them (transpose_set).
//
// Inside the rounds there is a second permutation. The high halves of the eight 32×32→64-bit products come out of
// the two _mm256_mul_epu32 results with a single shufps, which leaves them in the lane order P = (0, 2, 1, 3 |
// 4, 6, 5, 7) (lanes 1 and 2 of each half swapped), while the low halves (vpmulld) stay in natural order. A round
// computes x0' = hi1 ^ x1 ^ k0, x1' = lo1, x2' = hi0 ^ x3 ^ k1, x3' = lo0: with x0, x2 in lane order A and x1, x3
// in order P·A, the outputs are x0', x2' in order P·A and x1', x3' in order A = P·(P·A), so the invariant carries
// from round to round. The counters start that way (c1, the only non-uniform word besides c0, is laid out in order
// P·L); after the ten rounds x0, x2 are back in order L (P^10 = identity) and one shuffle puts x1, x3 there too.

enum class LaneOrder { kNatural, kPaired };

// Lane j of the result holds L(j), or L(P(j)) when permuted is set.
MEZO_AVX2_INLINE __m256i lane_blocks(LaneOrder order, bool permuted) {
  if (order == LaneOrder::kNatural) {
    return permuted ? _mm256_setr_epi32(0, 2, 1, 3, 4, 6, 5, 7) : _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  }
  return permuted ? _mm256_setr_epi32(0, 4, 2, 6, 1, 5, 3, 7) : _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
}

// Counter words of blocks block .. block + 7: c0 in lane order L, c1 (the high word of the 64-bit block index, plus
// one where the low word wrapped) in lane order P·L.
MEZO_AVX2_INLINE void block_counters(uint64_t block, LaneOrder order, __m256i& c0, __m256i& c1) {
  const __m256i lo = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(block)));
  const __m256i hi = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(block >> 32)));
  c0 = _mm256_add_epi32(lo, lane_blocks(order, false));
  const __m256i c0_permuted = _mm256_add_epi32(lo, lane_blocks(order, true));
  // Where the low word wrapped (lo >u c0), carry one into the high word: the mask is −1 there.
  const __m256i bias = _mm256_set1_epi32(INT32_MIN);
  const __m256i wrapped = _mm256_cmpgt_epi32(_mm256_xor_si256(lo, bias), _mm256_xor_si256(c0_permuted, bias));
  c1 = _mm256_sub_epi32(hi, wrapped);
}

// One Philox round on eight blocks (lane orders as described above).
MEZO_AVX2_INLINE void philox_round(__m256i& x0, __m256i& x1, __m256i& x2, __m256i& x3, __m256i m0, __m256i m1,
                                   __m256i key0, __m256i key1) {
  const __m256i even0 = _mm256_mul_epu32(x0, m0);                         // products of lanes 0, 2, 4, 6
  const __m256i odd0 = _mm256_mul_epu32(_mm256_srli_epi64(x0, 32), m0);  // products of lanes 1, 3, 5, 7
  const __m256i even1 = _mm256_mul_epu32(x2, m1);
  const __m256i odd1 = _mm256_mul_epu32(_mm256_srli_epi64(x2, 32), m1);
  const __m256i hi0 = _mm256_castps_si256(
      _mm256_shuffle_ps(_mm256_castsi256_ps(even0), _mm256_castsi256_ps(odd0), _MM_SHUFFLE(3, 1, 3, 1)));
  const __m256i hi1 = _mm256_castps_si256(
      _mm256_shuffle_ps(_mm256_castsi256_ps(even1), _mm256_castsi256_ps(odd1), _MM_SHUFFLE(3, 1, 3, 1)));
  const __m256i lo0 = _mm256_mullo_epi32(x0, m0);
  const __m256i lo1 = _mm256_mullo_epi32(x2, m1);
  x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), key0);
  x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), key1);
  x1 = lo1;
  x3 = lo0;
}

// Philox4x32-10 on C independent sets of eight blocks, set c covering blocks block + 8c .. block + 8c + 7: when
// finished, lane j of x[c][w] holds word w of block block + 8c + L(j). The rounds advance one set at a time, one
// per step(), so that the bulk Gaussian loop can spread the rounds for its next run between the Box–Muller steps
// of the current one (software pipelining: the integer work of the one fills gaps in the floating-point work of
// the other); finish() runs whatever is left.
template <int C>
struct PhiloxSets {
  __m256i x[C][4];
  const KeySchedule& ks;
  int done = 0;

  MEZO_AVX2_INLINE PhiloxSets(uint64_t block, uint32_t stream, LaneOrder order, const KeySchedule& schedule)
      : ks(schedule) {
    MEZO_UNROLL for (int c = 0; c < C; ++c) {
      block_counters(block + kBlocksPerVector * c, order, x[c][0], x[c][1]);
      x[c][2] = _mm256_set1_epi32(static_cast<int>(stream));
      x[c][3] = _mm256_setzero_si256();
    }
  }

  MEZO_AVX2_INLINE void step() {
    if (done < C * kPhiloxRounds) {
      const int round = done / C;
      const int c = done % C;
      philox_round(x[c][0], x[c][1], x[c][2], x[c][3], _mm256_set1_epi32(static_cast<int>(kPhiloxM0)),
                   _mm256_set1_epi32(static_cast<int>(kPhiloxM1)), ks.k0[round], ks.k1[round]);
      ++done;
    }
  }

  MEZO_AVX2_INLINE void finish() {
    MEZO_UNROLL for (int k = 0; k < C * kPhiloxRounds; ++k) step();
    MEZO_UNROLL for (int c = 0; c < C; ++c) {
      x[c][1] = _mm256_shuffle_epi32(x[c][1], _MM_SHUFFLE(3, 1, 2, 0));
      x[c][3] = _mm256_shuffle_epi32(x[c][3], _MM_SHUFFLE(3, 1, 2, 0));
    }
  }
};

// Work spread between the steps of Box–Muller when there is no next run.
struct NoInterleave {
  MEZO_AVX2_INLINE void step() {}
};

// ---- Box–Muller ------------------------------------------------------------------------------------------------
//
// The vector code computes exactly the values of box_muller (noise-kernel.h). Where it arranges the work
// differently, the two forms are equal bit for bit, not merely close:
//  * m > √2 is tested on the mantissa field (m in [1, 2) orders as its bits), and m·0.5 is m with exponent 126.
//  * −2·ln u is folded into the constants. Scaling by a power of two commutes with binary32 rounding (no value
//    here overflows or is subnormal), so with every log-series coefficient scaled by −4, each Horner step yields
//    exactly −4 times the scalar step, s·(−4p) = −2·((2s)·p) = −2·ln m, and (e − 24)·(−2 ln 2) = −2·((e − 24)·ln 2).
//    Their sum rounds to exactly −2·ln u: the scalar sum cannot cancel to zero, since |(e − 24)·ln 2| ≥ ln 2 while
//    |ln m| < ln √2 unless e − 24 = 0, and then m = 1 and both terms are zero, of the same signs in both forms.
//  * (t + 0.5)·step = (2t + 1)·(step/2) as real numbers, so both round to the same float; 2t + 1 < 2^22 is exact.
//  * The octant's swap and sign masks come from 8-entry tables indexed by the octant.
constexpr float kLogC9x4 = -4.0f * kLogC9;
constexpr float kLogC7x4 = -4.0f * kLogC7;
constexpr float kLogC5x4 = -4.0f * kLogC5;
constexpr float kLogC3x4 = -4.0f * kLogC3;
constexpr float kLogC1x4 = -4.0f;
constexpr float kLn2x2 = -2.0f * kLn2;
constexpr float kHalfAngleStep = 0.5f * kAngleStep;
constexpr uint32_t kSqrt2Mantissa = 0x003504F3u;  // the mantissa field of kSqrt2

// box_muller on N independent vectors of eight pairs: z0[n] = r·cos θ, z1[n] = r·sin θ. Each statement performs
// one step for all N vectors, so that N dependency chains run side by side.
template <int N, typename Interleave>
MEZO_AVX2_INLINE void box_muller_sets(const __m256i (&radius_word)[N], const __m256i (&angle_word)[N],
                                      __m256 (&z0)[N], __m256 (&z1)[N], Interleave& work) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256i mantissa[N], e24[N];
  __m256 m[N], halve[N], s[N], s2[N], p[N], r[N];
  // u = x·2^-24 with x = (word >> 8) + 1 ≤ 2^24, exact as a float whose fields give m in [1, 2) and e.
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    const __m256i x_bits = _mm256_castps_si256(
        _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_srli_epi32(radius_word[n], 8), _mm256_set1_epi32(1))));
    mantissa[n] = _mm256_and_si256(x_bits, _mm256_set1_epi32(0x007FFFFF));
    e24[n] = _mm256_sub_epi32(_mm256_srli_epi32(x_bits, 23), _mm256_set1_epi32(151));  // e − 24 before halving
  }
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    halve[n] = _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(mantissa[n], _mm256_set1_epi32(static_cast<int>(kSqrt2Mantissa))));
  }
  // m = mantissa with exponent 127 (m in [1, √2]) or 126 (m·0.5 where m > √2); e + 1 there (the mask is −1).
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    const __m256 exponent =
        _mm256_blendv_ps(_mm256_castsi256_ps(_mm256_set1_epi32(0x3F800000)),
                         _mm256_castsi256_ps(_mm256_set1_epi32(0x3F000000)), halve[n]);
    m[n] = _mm256_or_ps(_mm256_castsi256_ps(mantissa[n]), exponent);
    e24[n] = _mm256_sub_epi32(e24[n], _mm256_castps_si256(halve[n]));
  }
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) s[n] = _mm256_div_ps(_mm256_sub_ps(m[n], one), _mm256_add_ps(m[n], one));
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) s2[n] = _mm256_mul_ps(s[n], s[n]);
  // p = −4 × (the scalar Horner value).
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    p[n] = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(kLogC9x4), s2[n]), _mm256_set1_ps(kLogC7x4));
  }
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) p[n] = _mm256_add_ps(_mm256_mul_ps(p[n], s2[n]), _mm256_set1_ps(kLogC5x4));
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) p[n] = _mm256_add_ps(_mm256_mul_ps(p[n], s2[n]), _mm256_set1_ps(kLogC3x4));
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) p[n] = _mm256_add_ps(_mm256_mul_ps(p[n], s2[n]), _mm256_set1_ps(kLogC1x4));
  // −2 ln u = (e − 24)·(−2 ln 2) + s·p; r = sqrt(−2 ln u).
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    const __m256 minus_two_ln_u = _mm256_add_ps(
        _mm256_mul_ps(_mm256_cvtepi32_ps(e24[n]), _mm256_set1_ps(kLn2x2)), _mm256_mul_ps(s[n], p[n]));
    r[n] = _mm256_sqrt_ps(minus_two_ln_u);
  }

  // θ = octant·π/4 + y, octant = word >> 29; odd octants complement the 21 bits of t. Shifted left by 2, the word
  // has the octant's low bit in the sign position: an arithmetic shift spreads it into the complement mask, the
  // xor complements t and clears the sign, and the logical shift leaves 2t (bits 21..1), to which 1 is or-ed.
  __m256 y[N], y2[N], q[N], sin_y[N], cos_y[N];
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    const __m256i shifted = _mm256_slli_epi32(angle_word[n], 2);
    const __m256i complemented = _mm256_xor_si256(shifted, _mm256_srai_epi32(shifted, 31));
    const __m256i twice_t_plus_1 = _mm256_or_si256(_mm256_srli_epi32(complemented, 9), _mm256_set1_epi32(1));
    y[n] = _mm256_mul_ps(_mm256_cvtepi32_ps(twice_t_plus_1), _mm256_set1_ps(kHalfAngleStep));
  }
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) y2[n] = _mm256_mul_ps(y[n], y[n]);
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    q[n] = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(kSinC9), y2[n]), _mm256_set1_ps(kSinC7));
  }
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) q[n] = _mm256_add_ps(_mm256_mul_ps(q[n], y2[n]), _mm256_set1_ps(kSinC5));
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) q[n] = _mm256_add_ps(_mm256_mul_ps(q[n], y2[n]), _mm256_set1_ps(kSinC3));
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    sin_y[n] = _mm256_add_ps(y[n], _mm256_mul_ps(_mm256_mul_ps(y[n], y2[n]), q[n]));
  }
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    q[n] = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(kCosC8), y2[n]), _mm256_set1_ps(kCosC6));
  }
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) q[n] = _mm256_add_ps(_mm256_mul_ps(q[n], y2[n]), _mm256_set1_ps(kCosC4));
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) q[n] = _mm256_add_ps(_mm256_mul_ps(q[n], y2[n]), _mm256_set1_ps(kCosC2));
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) cos_y[n] = _mm256_add_ps(one, _mm256_mul_ps(y2[n], q[n]));

  // Per octant o: swap sin and cos where ((o + 1) >> 1) & 1, negate cos where ((o + 2) >> 2) & 1, negate sin
  // where o >> 2 (bit 31 of the word). vpermd reads the low three bits of each index lane: the octant.
  const __m256i swap_table = _mm256_setr_epi32(0, -1, -1, 0, 0, -1, -1, 0);
  const __m256i cos_sign_table = _mm256_setr_epi32(0, 0, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, 0, 0);
  const __m256i sign_bit = _mm256_set1_epi32(INT32_MIN);
  work.step();
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    const __m256i octant = _mm256_srli_epi32(angle_word[n], 29);
    const __m256 swap = _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(swap_table, octant));
    const __m256 cos_sign = _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(cos_sign_table, octant));
    const __m256 sin_sign = _mm256_castsi256_ps(_mm256_and_si256(angle_word[n], sign_bit));
    const __m256 exchange = _mm256_and_ps(_mm256_xor_ps(cos_y[n], sin_y[n]), swap);
    z0[n] = _mm256_mul_ps(r[n], _mm256_xor_ps(_mm256_xor_ps(cos_y[n], exchange), cos_sign));
    z1[n] = _mm256_mul_ps(r[n], _mm256_xor_ps(_mm256_xor_ps(sin_y[n], exchange), sin_sign));
  }
  work.step();
}

// 4×8 transpose of a set of eight blocks in the paired lane order L = (0, 2, 4, 6 | 1, 3, 5, 7): lane j of a0, a1
// holds values 0, 1 of block L(j) (from Philox words 0, 1), lane j of b0, b1 its values 2, 3 (words 2, 3).
// out[q] receives elements 8q .. 8q + 7, the four values of block 2q in its low half and of block 2q + 1, which
// sits in the same lane of the high half, in its high half; so no lane-crossing step is needed.
MEZO_AVX2_INLINE void transpose_set(__m256 a0, __m256 a1, __m256 b0, __m256 b1, __m256* out) {
  const __m256 t0 = _mm256_unpacklo_ps(a0, a1);  // lanes 0, 1 | 4, 5: a0 a1 a0 a1
  const __m256 t1 = _mm256_unpackhi_ps(a0, a1);  // lanes 2, 3 | 6, 7
  const __m256 t2 = _mm256_unpacklo_ps(b0, b1);
  const __m256 t3 = _mm256_unpackhi_ps(b0, b1);
  out[0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));  // lane 0 | lane 4: blocks 0 | 1
  out[1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));  // lane 1 | lane 5: blocks 2 | 3
  out[2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));  // lane 2 | lane 6: blocks 4 | 5
  out[3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));  // lane 3 | lane 7: blocks 6 | 7
}

// slab[32c + 8q + j] += scale · z for the Gaussian values z of the C sets of blocks whose Philox words are x, in
// the paired lane order (set c covers elements 32c .. 32c + 31 of the run at out), doing `work` on the side.
template <int C, typename Interleave>
MEZO_AVX2_INLINE void apply_gaussian_sets(const __m256i (&x)[C][4], float* out, __m256 scale, Interleave& work) {
  __m256i radius[C], angle[C];
  __m256 a0[C], a1[C], b0[C], b1[C];
  MEZO_UNROLL for (int c = 0; c < C; ++c) {
    radius[c] = x[c][0];
    angle[c] = x[c][1];
  }
  box_muller_sets<C>(radius, angle, a0, a1, work);
  MEZO_UNROLL for (int c = 0; c < C; ++c) {
    radius[c] = x[c][2];
    angle[c] = x[c][3];
  }
  box_muller_sets<C>(radius, angle, b0, b1, work);
  MEZO_UNROLL for (int c = 0; c < C; ++c) {
    __m256 z[4];
    transpose_set(a0[c], a1[c], b0[c], b1[c], z);
    MEZO_UNROLL for (int q = 0; q < 4; ++q) {
      float* at = out + kGaussianPerVector * c + 8 * q;
      _mm256_storeu_ps(at, _mm256_add_ps(_mm256_loadu_ps(at), _mm256_mul_ps(scale, z[q])));
    }
  }
}

MEZO_AVX2 void gaussian_range(float* slab, const Entry& entry, uint64_t offset, size_t start, size_t end) {
  KeySchedule ks;
  make_key_schedule(entry.k0, entry.k1, ks);
  const float s = entry.scale;
  const __m256 scale = _mm256_set1_ps(s);
  size_t i = start;
  while (i < end) {
    const uint64_t g = offset + i;
    const size_t lane = static_cast<size_t>(g % kGaussianPerBlock);
    if (lane == 0 && end - i >= kGaussianBulk) {
      // Bulk: runs of 128 elements; the Philox rounds for run k + 1 are spread through the Box–Muller of run k.
      uint64_t block = g / kGaussianPerBlock;
      PhiloxSets<kBulkVectors> current(block, kStreamGaussian, LaneOrder::kPaired, ks);
      current.finish();
      while (end - i >= 2 * kGaussianBulk) {
        block += kBulkVectors * kBlocksPerVector;
        PhiloxSets<kBulkVectors> next(block, kStreamGaussian, LaneOrder::kPaired, ks);
        apply_gaussian_sets<kBulkVectors>(current.x, slab + i, scale, next);
        next.finish();
        MEZO_UNROLL for (int c = 0; c < kBulkVectors; ++c) {
          MEZO_UNROLL for (int w = 0; w < 4; ++w) current.x[c][w] = next.x[c][w];
        }
        i += kGaussianBulk;
      }
      NoInterleave nothing;
      apply_gaussian_sets<kBulkVectors>(current.x, slab + i, scale, nothing);
      i += kGaussianBulk;
      continue;
    }
    // A run of 32 elements, or a ragged head or tail.
    const size_t n = std::min(kGaussianPerVector - lane, end - i);
    float* out = slab + i;
    PhiloxSets<1> words(g / kGaussianPerBlock, kStreamGaussian, LaneOrder::kPaired, ks);
    words.finish();
    NoInterleave nothing;
    if (n == kGaussianPerVector) {
      apply_gaussian_sets<1>(words.x, out, scale, nothing);
    } else {
      // Ragged head or tail: the noise lands in a buffer of −0 (−0 + 1·z = z exactly, signed zeros included),
      // then the elements in range are updated one at a time.
      alignas(32) float noise[kGaussianPerVector];
      for (float& value : noise) value = -0.0f;
      apply_gaussian_sets<1>(words.x, noise, _mm256_set1_ps(1.0f), nothing);
      for (size_t j = 0; j < n; ++j) out[j] = out[j] + s * noise[lane + j];
    }
    i += n;
  }
}

// ---- Rademacher ------------------------------------------------------------------------------------------------

// Adds ±scale to the 32 elements at out; bit b of word set means −scale for element b. Shifting the broadcast
// word left by 31 − b puts bit b in the sign position of lane b, which is then xored into scale's sign.
MEZO_AVX2_INLINE void rademacher_word(float* out, uint32_t word, __m256i scale_bits, const __m256i (&shifts)[4]) {
  const __m256i bits = _mm256_set1_epi32(static_cast<int>(word));
  const __m256i sign_bit = _mm256_set1_epi32(INT32_MIN);
  MEZO_UNROLL for (int h = 0; h < 4; ++h) {
    const __m256i sign = _mm256_and_si256(_mm256_sllv_epi32(bits, shifts[h]), sign_bit);
    const __m256 value = _mm256_castsi256_ps(_mm256_xor_si256(scale_bits, sign));
    _mm256_storeu_ps(out + 8 * h, _mm256_add_ps(_mm256_loadu_ps(out + 8 * h), value));
  }
}

MEZO_AVX2 void rademacher_range(float* slab, const Entry& entry, uint64_t offset, size_t start, size_t end) {
  KeySchedule ks;
  make_key_schedule(entry.k0, entry.k1, ks);
  const uint32_t scale_word = float_bits(entry.scale);
  const __m256i scale_bits = _mm256_set1_epi32(static_cast<int>(scale_word));
  const __m256i shifts[4] = {
      _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24),
      _mm256_setr_epi32(23, 22, 21, 20, 19, 18, 17, 16),
      _mm256_setr_epi32(15, 14, 13, 12, 11, 10, 9, 8),
      _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0),
  };
  size_t i = start;
  while (i < end) {
    const uint64_t g = offset + i;
    const uint64_t block = g / kRademacherPerBlock;
    const size_t lane = static_cast<size_t>(g % kRademacherPerBlock);
    float* out = slab + i;
    if (lane == 0 && end - i >= kRademacherPerVector) {
      PhiloxSets<1> philox(block, kStreamRademacher, LaneOrder::kNatural, ks);
      philox.finish();
      alignas(32) uint32_t words[4][kBlocksPerVector];
      for (int w = 0; w < 4; ++w) _mm256_store_si256(reinterpret_cast<__m256i*>(words[w]), philox.x[0][w]);
      for (size_t j = 0; j < kBlocksPerVector; ++j) {
        float* block_out = out + kRademacherPerBlock * j;
        MEZO_UNROLL for (int w = 0; w < 4; ++w) {
          rademacher_word(block_out + 32 * w, words[w][j], scale_bits, shifts);
        }
      }
      i += kRademacherPerVector;
      continue;
    }
    const Philox4 w = philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                                    kStreamRademacher, 0, entry.k0, entry.k1);
    const size_t n = std::min(static_cast<size_t>(kRademacherPerBlock) - lane, end - i);
    if (n == kRademacherPerBlock) {
      for (int q = 0; q < 4; ++q) rademacher_word(out + 32 * q, w.v[q], scale_bits, shifts);
    } else {
      for (size_t j = 0; j < n; ++j) {
        const size_t l = lane + j;
        const uint32_t sign = ((w.v[l >> 5] >> (l & 31)) & 1u) << 31;
        out[j] = out[j] + float_from_bits(scale_word ^ sign);
      }
    }
    i += n;
  }
}

// ---- entry point -----------------------------------------------------------------------------------------------

void accumulate_avx2(float* slab, const Entry* entries, size_t count, uint64_t offset, size_t start, size_t end,
                     int distribution) {
  accumulate_in_chunks(slab, entries, count, offset, start, end, distribution, gaussian_range, rademacher_range);
}

// The portable low-rank row, compiled here for AVX2 (eight columns per instruction; still no FMA).
MEZO_AVX2 void lowrank_row_avx2(float* out, size_t n, const float* u, const float* v, size_t stride, int rank, float c,
                                float scale) {
  lowrank_row_body(out, n, u, v, stride, rank, c, scale);
}

constexpr KernelImpl kAvx2{"avx2", accumulate_avx2, lowrank_row_avx2};

}  // namespace

const KernelImpl* avx2_kernel() { return &kAvx2; }

}  // namespace mezo_noise

#else  // not x86-64

namespace mezo_noise {
const KernelImpl* avx2_kernel() { return nullptr; }
}  // namespace mezo_noise

#endif

// The NEON kernel (AArch64): Philox on four blocks per 128-bit register, Box–Muller on four pairs per register,
// and the Rademacher signs four lanes at a time. NEON (Advanced SIMD) is part of every AArch64 CPU, so this kernel
// is chosen whenever the addon is built for arm64; MEZO_NOISE_SIMD=generic still selects the portable kernel.
//
// Bit identity with box_muller (noise-kernel.h): the vector code performs the same binary32 operations on the same
// values in the same order. Multiply-add is always a separate vmulq_f32 and vaddq_f32 (never vmlaq/vfmaq), and the
// build passes -ffp-contract=off so the compiler cannot fuse them either; fdiv, fsqrt and scvtf round to nearest
// under the default FPCR, as the scalar operations do.
#include "noise-kernel.h"

#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))

#include <arm_neon.h>

#include <algorithm>

#define MEZO_NEON_INLINE __attribute__((always_inline)) inline
#define MEZO_UNROLL _Pragma("GCC unroll 16")

namespace mezo_noise {
namespace {

constexpr size_t kBlocksPerVector = 4;
constexpr size_t kGaussianPerVector = kBlocksPerVector * kGaussianPerBlock;      // 16 elements
constexpr size_t kRademacherPerVector = kBlocksPerVector * kRademacherPerBlock;  // 512 elements
// The bulk Gaussian path works on independent sets of four blocks side by side: each Philox round and each
// Box–Muller step is a chain of dependent instructions, and independent chains keep the pipes busy.
constexpr int kBulkSets = 4;
constexpr size_t kGaussianBulk = kBulkSets * kGaussianPerVector;  // 64 elements

struct KeySchedule {
  uint32x4_t k0[kPhiloxRounds];
  uint32x4_t k1[kPhiloxRounds];
};

MEZO_NEON_INLINE void make_key_schedule(uint32_t k0, uint32_t k1, KeySchedule& ks) {
  for (int round = 0; round < kPhiloxRounds; ++round) {
    ks.k0[round] = vdupq_n_u32(k0);
    ks.k1[round] = vdupq_n_u32(k1);
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
}

// 0 → 0 and 1 → all ones (two's-complement negation), for masks built from single bits.
MEZO_NEON_INLINE uint32x4_t all_ones_where(uint32x4_t bit) {
  return vreinterpretq_u32_s32(vnegq_s32(vreinterpretq_s32_u32(bit)));
}

// ---- Philox ----------------------------------------------------------------------------------------------------

// Lane j holds block `block + j`: c0 is the low word plus j, c1 the high word plus one where the low word wrapped.
MEZO_NEON_INLINE void block_counters(uint64_t block, uint32x4_t& c0, uint32x4_t& c1) {
  static const uint32_t kLanes[4] = {0, 1, 2, 3};
  const uint32x4_t lo = vdupq_n_u32(static_cast<uint32_t>(block));
  c0 = vaddq_u32(lo, vld1q_u32(kLanes));
  // vcltq gives all ones (−1) where c0 wrapped below lo; subtracting it adds the carry.
  c1 = vsubq_u32(vdupq_n_u32(static_cast<uint32_t>(block >> 32)), vcltq_u32(c0, lo));
}

// The 64-bit products of four lanes by m: vmull_u32 / vmull_high_u32 give lanes 0–1 and 2–3 as 64-bit values;
// uzp1 collects their low words and uzp2 their high words, both back in lane order 0, 1, 2, 3.
MEZO_NEON_INLINE void mul_wide(uint32x4_t x, uint32x4_t m, uint32x4_t& hi, uint32x4_t& lo) {
  const uint32x4_t p01 = vreinterpretq_u32_u64(vmull_u32(vget_low_u32(x), vget_low_u32(m)));
  const uint32x4_t p23 = vreinterpretq_u32_u64(vmull_high_u32(x, m));
  hi = vuzp2q_u32(p01, p23);
  lo = vuzp1q_u32(p01, p23);
}

// Philox4x32-10 on C sets of four blocks, set c covering blocks block + 4c .. block + 4c + 3: lane j of x[c][w]
// is word w of block block + 4c + j. Each statement advances all C sets by one step.
template <int C>
MEZO_NEON_INLINE void philox_sets(uint64_t block, uint32_t stream, const KeySchedule& ks, uint32x4_t (&x)[C][4]) {
  const uint32x4_t m0 = vdupq_n_u32(kPhiloxM0);
  const uint32x4_t m1 = vdupq_n_u32(kPhiloxM1);
  MEZO_UNROLL for (int c = 0; c < C; ++c) {
    block_counters(block + kBlocksPerVector * c, x[c][0], x[c][1]);
    x[c][2] = vdupq_n_u32(stream);
    x[c][3] = vdupq_n_u32(0);
  }
  MEZO_UNROLL for (int round = 0; round < kPhiloxRounds; ++round) {
    MEZO_UNROLL for (int c = 0; c < C; ++c) {
      uint32x4_t hi0, lo0, hi1, lo1;
      mul_wide(x[c][0], m0, hi0, lo0);
      mul_wide(x[c][2], m1, hi1, lo1);
      const uint32x4_t n0 = veorq_u32(veorq_u32(hi1, x[c][1]), ks.k0[round]);
      const uint32x4_t n2 = veorq_u32(veorq_u32(hi0, x[c][3]), ks.k1[round]);
      x[c][1] = lo1;
      x[c][3] = lo0;
      x[c][0] = n0;
      x[c][2] = n2;
    }
  }
}

// ---- Box–Muller ------------------------------------------------------------------------------------------------

// box_muller (noise-kernel.h) on N vectors of four pairs, step for step: z0[n] = r·cos θ, z1[n] = r·sin θ.
template <int N>
MEZO_NEON_INLINE void box_muller_sets(const uint32x4_t (&radius_word)[N], const uint32x4_t (&angle_word)[N],
                                      float32x4_t (&z0)[N], float32x4_t (&z1)[N]) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  float32x4_t s[N], s2[N], p[N], r[N];
  int32x4_t e24[N];
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    // u = x·2^-24, x = (word >> 8) + 1 ≤ 2^24, exact as a float whose fields give m in [1, 2) and e.
    const uint32x4_t x_bits = vreinterpretq_u32_f32(
        vcvtq_f32_s32(vreinterpretq_s32_u32(vaddq_u32(vshrq_n_u32(radius_word[n], 8), vdupq_n_u32(1)))));
    const uint32x4_t m0 = vorrq_u32(vandq_u32(x_bits, vdupq_n_u32(0x007FFFFFu)), vdupq_n_u32(0x3F800000u));
    const uint32x4_t halve = vcgtq_f32(vreinterpretq_f32_u32(m0), vdupq_n_f32(kSqrt2));  // all ones where m > √2
    const float32x4_t m = vreinterpretq_f32_u32(vsubq_u32(m0, vandq_u32(halve, vdupq_n_u32(0x00800000u))));
    // e − 24 = (x_bits >> 23) − 127 + (halve & 1) − 24
    e24[n] = vaddq_s32(vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(x_bits, 23)), vdupq_n_s32(151)),
                       vreinterpretq_s32_u32(vandq_u32(halve, vdupq_n_u32(1))));
    s[n] = vdivq_f32(vsubq_f32(m, one), vaddq_f32(m, one));
  }
  MEZO_UNROLL for (int n = 0; n < N; ++n) s2[n] = vmulq_f32(s[n], s[n]);
  MEZO_UNROLL for (int n = 0; n < N; ++n) p[n] = vaddq_f32(vmulq_f32(vdupq_n_f32(kLogC9), s2[n]), vdupq_n_f32(kLogC7));
  MEZO_UNROLL for (int n = 0; n < N; ++n) p[n] = vaddq_f32(vmulq_f32(p[n], s2[n]), vdupq_n_f32(kLogC5));
  MEZO_UNROLL for (int n = 0; n < N; ++n) p[n] = vaddq_f32(vmulq_f32(p[n], s2[n]), vdupq_n_f32(kLogC3));
  MEZO_UNROLL for (int n = 0; n < N; ++n) p[n] = vaddq_f32(vmulq_f32(p[n], s2[n]), one);
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    const float32x4_t ln_m = vmulq_f32(vmulq_f32(vdupq_n_f32(2.0f), s[n]), p[n]);
    const float32x4_t ln_u = vaddq_f32(vmulq_f32(vcvtq_f32_s32(e24[n]), vdupq_n_f32(kLn2)), ln_m);
    r[n] = vsqrtq_f32(vmulq_f32(vdupq_n_f32(-2.0f), ln_u));
  }

  // θ = octant·π/4 + y; odd octants count y down from π/4 by complementing the 21 bits.
  float32x4_t y[N], y2[N], q[N], sin_y[N], cos_y[N];
  uint32x4_t octant[N];
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    const uint32x4_t v = vshrq_n_u32(angle_word[n], 8);
    octant[n] = vshrq_n_u32(v, 21);
    const uint32x4_t odd = all_ones_where(vandq_u32(octant[n], vdupq_n_u32(1)));
    const uint32x4_t t = veorq_u32(vandq_u32(v, vdupq_n_u32(0x1FFFFFu)), vandq_u32(odd, vdupq_n_u32(0x1FFFFFu)));
    y[n] = vmulq_f32(vaddq_f32(vcvtq_f32_s32(vreinterpretq_s32_u32(t)), vdupq_n_f32(0.5f)), vdupq_n_f32(kAngleStep));
  }
  MEZO_UNROLL for (int n = 0; n < N; ++n) y2[n] = vmulq_f32(y[n], y[n]);
  MEZO_UNROLL for (int n = 0; n < N; ++n) q[n] = vaddq_f32(vmulq_f32(vdupq_n_f32(kSinC9), y2[n]), vdupq_n_f32(kSinC7));
  MEZO_UNROLL for (int n = 0; n < N; ++n) q[n] = vaddq_f32(vmulq_f32(q[n], y2[n]), vdupq_n_f32(kSinC5));
  MEZO_UNROLL for (int n = 0; n < N; ++n) q[n] = vaddq_f32(vmulq_f32(q[n], y2[n]), vdupq_n_f32(kSinC3));
  MEZO_UNROLL for (int n = 0; n < N; ++n) sin_y[n] = vaddq_f32(y[n], vmulq_f32(vmulq_f32(y[n], y2[n]), q[n]));
  MEZO_UNROLL for (int n = 0; n < N; ++n) q[n] = vaddq_f32(vmulq_f32(vdupq_n_f32(kCosC8), y2[n]), vdupq_n_f32(kCosC6));
  MEZO_UNROLL for (int n = 0; n < N; ++n) q[n] = vaddq_f32(vmulq_f32(q[n], y2[n]), vdupq_n_f32(kCosC4));
  MEZO_UNROLL for (int n = 0; n < N; ++n) q[n] = vaddq_f32(vmulq_f32(q[n], y2[n]), vdupq_n_f32(kCosC2));
  MEZO_UNROLL for (int n = 0; n < N; ++n) cos_y[n] = vaddq_f32(one, vmulq_f32(y2[n], q[n]));

  // Swap sin and cos where ((octant + 1) >> 1) & 1; negate cos where ((octant + 2) >> 2) & 1, sin where octant >> 2.
  MEZO_UNROLL for (int n = 0; n < N; ++n) {
    const uint32x4_t o = octant[n];
    const uint32x4_t swap = all_ones_where(vandq_u32(vshrq_n_u32(vaddq_u32(o, vdupq_n_u32(1)), 1), vdupq_n_u32(1)));
    const uint32x4_t cos_bits = vreinterpretq_u32_f32(cos_y[n]);
    const uint32x4_t sin_bits = vreinterpretq_u32_f32(sin_y[n]);
    const uint32x4_t exchange = vandq_u32(veorq_u32(cos_bits, sin_bits), swap);
    const uint32x4_t cos_sign = vshlq_n_u32(vandq_u32(vshrq_n_u32(vaddq_u32(o, vdupq_n_u32(2)), 2), vdupq_n_u32(1)), 31);
    const uint32x4_t sin_sign = vshlq_n_u32(vshrq_n_u32(o, 2), 31);
    const float32x4_t cos_theta = vreinterpretq_f32_u32(veorq_u32(veorq_u32(cos_bits, exchange), cos_sign));
    const float32x4_t sin_theta = vreinterpretq_f32_u32(veorq_u32(veorq_u32(sin_bits, exchange), sin_sign));
    z0[n] = vmulq_f32(r[n], cos_theta);
    z1[n] = vmulq_f32(r[n], sin_theta);
  }
}

// The Gaussian values of C sets of four blocks: z[c].val[k] lane j is element 4·(4c + j) + k of the run, so
// vst4q/vld4q (which interleave four registers) map them onto consecutive slab elements.
template <int C>
MEZO_NEON_INLINE void gaussian_sets(uint64_t block, const KeySchedule& ks, float32x4x4_t (&z)[C]) {
  uint32x4_t x[C][4];
  philox_sets<C>(block, kStreamGaussian, ks, x);
  uint32x4_t radius[C], angle[C];
  float32x4_t a0[C], a1[C], b0[C], b1[C];
  MEZO_UNROLL for (int c = 0; c < C; ++c) {
    radius[c] = x[c][0];
    angle[c] = x[c][1];
  }
  box_muller_sets<C>(radius, angle, a0, a1);
  MEZO_UNROLL for (int c = 0; c < C; ++c) {
    radius[c] = x[c][2];
    angle[c] = x[c][3];
  }
  box_muller_sets<C>(radius, angle, b0, b1);
  MEZO_UNROLL for (int c = 0; c < C; ++c) {
    z[c].val[0] = a0[c];
    z[c].val[1] = a1[c];
    z[c].val[2] = b0[c];
    z[c].val[3] = b1[c];
  }
}

// out[k] = f32(out[k] + f32(scale · z[k])) for the 16 elements at out.
MEZO_NEON_INLINE void add_scaled(float* out, const float32x4x4_t& z, float32x4_t scale) {
  float32x4x4_t current = vld4q_f32(out);
  MEZO_UNROLL for (int k = 0; k < 4; ++k) current.val[k] = vaddq_f32(current.val[k], vmulq_f32(scale, z.val[k]));
  vst4q_f32(out, current);
}

void gaussian_range(float* slab, const Entry& entry, uint64_t offset, size_t start, size_t end) {
  KeySchedule ks;
  make_key_schedule(entry.k0, entry.k1, ks);
  const float s = entry.scale;
  const float32x4_t scale = vdupq_n_f32(s);
  size_t i = start;
  while (i < end) {
    const uint64_t g = offset + i;
    const size_t lane = static_cast<size_t>(g % kGaussianPerBlock);
    float* out = slab + i;
    if (lane == 0 && end - i >= kGaussianBulk) {
      float32x4x4_t z[kBulkSets];
      gaussian_sets<kBulkSets>(g / kGaussianPerBlock, ks, z);
      MEZO_UNROLL for (int c = 0; c < kBulkSets; ++c) add_scaled(out + kGaussianPerVector * c, z[c], scale);
      i += kGaussianBulk;
      continue;
    }
    // A run of 16 elements, or a ragged head or tail (then one element at a time, as the portable kernel does).
    float32x4x4_t z[1];
    gaussian_sets<1>(g / kGaussianPerBlock, ks, z);
    const size_t n = std::min(kGaussianPerVector - lane, end - i);
    if (n == kGaussianPerVector) {
      add_scaled(out, z[0], scale);
    } else {
      float noise[kGaussianPerVector];
      vst4q_f32(noise, z[0]);
      for (size_t j = 0; j < n; ++j) out[j] = out[j] + s * noise[lane + j];
    }
    i += n;
  }
}

// ---- Rademacher ------------------------------------------------------------------------------------------------

// Adds ±scale to the 32 elements at out; bit b of word set means −scale for element b. Shifting the broadcast word
// left by 31 − b puts bit b in the sign position of lane b, which is then xored into scale's bits.
MEZO_NEON_INLINE void rademacher_word(float* out, uint32_t word, uint32x4_t scale_bits) {
  static const int32_t kShifts[32] = {31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
                                      15, 14, 13, 12, 11, 10, 9,  8,  7,  6,  5,  4,  3,  2,  1,  0};
  const uint32x4_t bits = vdupq_n_u32(word);
  const uint32x4_t sign_bit = vdupq_n_u32(0x80000000u);
  MEZO_UNROLL for (int h = 0; h < 8; ++h) {
    const uint32x4_t sign = vandq_u32(vshlq_u32(bits, vld1q_s32(kShifts + 4 * h)), sign_bit);
    const float32x4_t value = vreinterpretq_f32_u32(veorq_u32(scale_bits, sign));
    vst1q_f32(out + 4 * h, vaddq_f32(vld1q_f32(out + 4 * h), value));
  }
}

void rademacher_range(float* slab, const Entry& entry, uint64_t offset, size_t start, size_t end) {
  KeySchedule ks;
  make_key_schedule(entry.k0, entry.k1, ks);
  const uint32_t scale_word = float_bits(entry.scale);
  const uint32x4_t scale_bits = vdupq_n_u32(scale_word);
  size_t i = start;
  while (i < end) {
    const uint64_t g = offset + i;
    const uint64_t block = g / kRademacherPerBlock;
    const size_t lane = static_cast<size_t>(g % kRademacherPerBlock);
    float* out = slab + i;
    if (lane == 0 && end - i >= kRademacherPerVector) {
      uint32x4_t x[1][4];
      philox_sets<1>(block, kStreamRademacher, ks, x);
      uint32_t words[4][kBlocksPerVector];
      for (int w = 0; w < 4; ++w) vst1q_u32(words[w], x[0][w]);
      for (size_t j = 0; j < kBlocksPerVector; ++j) {
        float* block_out = out + kRademacherPerBlock * j;
        MEZO_UNROLL for (int w = 0; w < 4; ++w) rademacher_word(block_out + 32 * w, words[w][j], scale_bits);
      }
      i += kRademacherPerVector;
      continue;
    }
    const Philox4 w = philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                                    kStreamRademacher, 0, entry.k0, entry.k1);
    const size_t n = std::min(static_cast<size_t>(kRademacherPerBlock) - lane, end - i);
    if (n == kRademacherPerBlock) {
      for (int q = 0; q < 4; ++q) rademacher_word(out + 32 * q, w.v[q], scale_bits);
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

void accumulate_neon(float* slab, const Entry* entries, size_t count, uint64_t offset, size_t start, size_t end,
                     int distribution) {
  accumulate_in_chunks(slab, entries, count, offset, start, end, distribution, gaussian_range, rademacher_range);
}

// The low-rank rows: the portable loop, which GCC already vectorises with NEON at -O3 on AArch64 (NEON is the
// baseline there), so a hand-written version would compute the same instructions.
void lowrank_row_neon(float* out, size_t n, const float* u, const float* v, size_t stride, int rank, float c,
                      float scale) {
  lowrank_row_body(out, n, u, v, stride, rank, c, scale);
}

constexpr KernelImpl kNeon{"neon", accumulate_neon, lowrank_row_neon};

}  // namespace

const KernelImpl* neon_kernel() { return &kNeon; }

}  // namespace mezo_noise

#else  // not AArch64

namespace mezo_noise {
const KernelImpl* neon_kernel() { return nullptr; }
}  // namespace mezo_noise

#endif

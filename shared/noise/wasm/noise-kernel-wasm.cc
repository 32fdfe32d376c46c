// The WebAssembly noise kernel: the portable kernel (../native/noise-kernel-generic.cc, compiled unchanged under
// the same rules: no fused multiply-add, no fast-math, no libm) plus a Gaussian path written for WebAssembly's
// 128-bit SIMD, exported as plain functions over the module's linear memory. shared/noise/wasm-kernel.ts copies
// slab ranges in and out of memory it reserves above __heap_base; the module allocates nothing.
//
// Why a SIMD Gaussian path of its own: compiled from the portable loops, Philox's 32×32→64-bit products become
// i64x2.mul, which engines emulate with several instructions; i64x2.extmul_{low,high}_i32x4_u are the direct
// form. The Box–Muller steps are the scalar definition (box_muller in noise-kernel.h) applied lane by lane: the
// same binary32 operations on the same values in the same order, so the bits are those of every other kernel.
#include <wasm_simd128.h>

#include "../native/noise-kernel.h"

namespace mezo_noise {
namespace {

typedef uint32_t U32x4 __attribute__((vector_size(16)));
typedef int32_t I32x4 __attribute__((vector_size(16)));
typedef float F32x4 __attribute__((vector_size(16)));

constexpr size_t kLanes = 4;  // blocks per vector
constexpr int kSets = 1;      // vectors per batch (more run side by side spill registers on x86-64's sixteen)
constexpr size_t kBatchBlocks = kLanes * kSets;
constexpr size_t kBatchElements = kBatchBlocks * kGaussianPerBlock;  // 64

template <typename To, typename From>
inline To bits_as(From value) {
  static_assert(sizeof(To) == sizeof(From), "same size");
  return __builtin_bit_cast(To, value);
}

inline U32x4 splat_u32(uint32_t value) { return U32x4{value, value, value, value}; }
inline F32x4 splat_f32(float value) { return F32x4{value, value, value, value}; }

// i64x2.extmul_{low,high}_i32x4_u spelled out: clang folds the intrinsics' extend of a constant multiplier into an
// i64x2 constant and then emits a full 64×64-bit i64x2.mul, which engines emulate in several instructions.
inline v128_t extmul_low_u32(v128_t a, v128_t b) {
  v128_t out;
  __asm__("local.get %1\n\tlocal.get %2\n\ti64x2.extmul_low_i32x4_u\n\tlocal.set %0" : "=r"(out) : "r"(a), "r"(b));
  return out;
}
inline v128_t extmul_high_u32(v128_t a, v128_t b) {
  v128_t out;
  __asm__("local.get %1\n\tlocal.get %2\n\ti64x2.extmul_high_i32x4_u\n\tlocal.set %0" : "=r"(out) : "r"(a), "r"(b));
  return out;
}

// The four 32×32→64-bit products x·m (m a splat), split into their high and low 32-bit halves.
inline void mul_wide(U32x4 x, v128_t m, U32x4& hi, U32x4& lo) {
  const v128_t low = extmul_low_u32(bits_as<v128_t>(x), m);
  const v128_t high = extmul_high_u32(bits_as<v128_t>(x), m);
  hi = bits_as<U32x4>(wasm_i32x4_shuffle(low, high, 1, 3, 5, 7));
  lo = bits_as<U32x4>(wasm_i32x4_shuffle(low, high, 0, 2, 4, 6));
}

// Round keys as splats, made once per range instead of once per round of every batch.
struct KeySchedule {
  U32x4 k0[kPhiloxRounds];
  U32x4 k1[kPhiloxRounds];
  KeySchedule(uint32_t key0, uint32_t key1) {
    for (int round = 0; round < kPhiloxRounds; ++round) {
      k0[round] = splat_u32(key0);
      k1[round] = splat_u32(key1);
      key0 += kPhiloxW0;
      key1 += kPhiloxW1;
    }
  }
};

// Philox4x32-10 on kSets × 4 blocks, block + 4·c + j in lane j of set c; x[c][w] ends as word w of those blocks.
inline void philox_batch(uint64_t block, const KeySchedule& ks, U32x4 (&x)[kSets][4]) {
  const uint32_t lo = static_cast<uint32_t>(block);
  const uint32_t hi = static_cast<uint32_t>(block >> 32);
  for (int c = 0; c < kSets; ++c) {
    const U32x4 lane = U32x4{0, 1, 2, 3} + static_cast<uint32_t>(kLanes * c);
    const U32x4 c0 = splat_u32(lo) + lane;
    // Where the low word wrapped (c0 < lo, unsigned), carry one into the high word: the mask is −1 there.
    const U32x4 wrapped = bits_as<U32x4>(c0 < splat_u32(lo));
    x[c][0] = c0;
    x[c][1] = splat_u32(hi) - wrapped;
    x[c][2] = splat_u32(kStreamGaussian);
    x[c][3] = splat_u32(0);
  }
  const v128_t m0 = wasm_u32x4_splat(kPhiloxM0);
  const v128_t m1 = wasm_u32x4_splat(kPhiloxM1);
#pragma clang loop unroll(full)
  for (int round = 0; round < kPhiloxRounds; ++round) {
#pragma clang loop unroll(full)
    for (int c = 0; c < kSets; ++c) {
      U32x4 hi0, lo0, hi1, lo1;
      mul_wide(x[c][0], m0, hi0, lo0);
      mul_wide(x[c][2], m1, hi1, lo1);
      x[c][0] = hi1 ^ x[c][1] ^ ks.k0[round];
      x[c][2] = hi0 ^ x[c][3] ^ ks.k1[round];
      x[c][1] = lo1;
      x[c][3] = lo0;
    }
  }
}

constexpr float kLogC9x4 = -4.0f * kLogC9;
constexpr float kLogC7x4 = -4.0f * kLogC7;
constexpr float kLogC5x4 = -4.0f * kLogC5;
constexpr float kLogC3x4 = -4.0f * kLogC3;
constexpr float kLogC1x4 = -4.0f;
constexpr float kLn2x2 = -2.0f * kLn2;

// box_muller (noise-kernel.h) on four pairs of words at once, statement for statement.
inline void box_muller_x4(U32x4 radius_word, U32x4 angle_word, F32x4& z0, F32x4& z1) {
  const F32x4 x = __builtin_convertvector(bits_as<I32x4>((radius_word >> 8) + 1u), F32x4);
  const U32x4 x_bits = bits_as<U32x4>(x);
  const F32x4 m0 = bits_as<F32x4>((x_bits & 0x007FFFFFu) | 0x3F800000u);
  const U32x4 halve = bits_as<U32x4>(m0 > splat_f32(kSqrt2));  // all ones where m > √2
  const F32x4 m = bits_as<F32x4>(bits_as<U32x4>(m0) - (halve & 0x00800000u));
  // e − 24, plus one where m was halved (the mask is −1 there).
  const I32x4 e24 = bits_as<I32x4>(x_bits >> 23) - 151 - bits_as<I32x4>(halve);
  const F32x4 s = (m - 1.0f) / (m + 1.0f);
  const F32x4 s2 = s * s;
  // −2·ln u with the −2 folded into the constants, as the AVX2 kernel does (noise-kernel-avx2.cc explains why
  // every step is then exactly −4 or −2 times the scalar one, so the sum rounds to exactly −2·ln u).
  F32x4 p = splat_f32(kLogC9x4);
  p = p * s2 + kLogC7x4;
  p = p * s2 + kLogC5x4;
  p = p * s2 + kLogC3x4;
  p = p * s2 + kLogC1x4;
  const F32x4 minus_2_ln_m = s * p;
  const F32x4 minus_2_ln_u = __builtin_convertvector(e24, F32x4) * kLn2x2 + minus_2_ln_m;
  const F32x4 r = bits_as<F32x4>(wasm_f32x4_sqrt(bits_as<v128_t>(minus_2_ln_u)));

  const U32x4 v = angle_word >> 8;
  const U32x4 octant = v >> 21;
  const U32x4 t = (v & 0x1FFFFFu) ^ ((0u - (octant & 1u)) & 0x1FFFFFu);
  const F32x4 y = (__builtin_convertvector(bits_as<I32x4>(t), F32x4) + 0.5f) * kAngleStep;
  const F32x4 y2 = y * y;
  F32x4 q = splat_f32(kSinC9);
  q = q * y2 + kSinC7;
  q = q * y2 + kSinC5;
  q = q * y2 + kSinC3;
  const F32x4 sin_y = y + (y * y2) * q;
  q = splat_f32(kCosC8);
  q = q * y2 + kCosC6;
  q = q * y2 + kCosC4;
  q = q * y2 + kCosC2;
  const F32x4 cos_y = 1.0f + y2 * q;

  const U32x4 swap = 0u - (((octant + 1u) >> 1) & 1u);
  const U32x4 exchange = (bits_as<U32x4>(cos_y) ^ bits_as<U32x4>(sin_y)) & swap;
  const U32x4 cos_sign = (((octant + 2u) >> 2) & 1u) << 31;
  const U32x4 sin_sign = (octant >> 2) << 31;
  const F32x4 cos_theta = bits_as<F32x4>(bits_as<U32x4>(cos_y) ^ exchange ^ cos_sign);
  const F32x4 sin_theta = bits_as<F32x4>(bits_as<U32x4>(sin_y) ^ exchange ^ sin_sign);
  z0 = r * cos_theta;
  z1 = r * sin_theta;
}

// z[c][0 .. 4) = the Gaussian values of global elements 4·block + 16·c .. 4·block + 16·c + 15, four per vector.
inline void gaussian_batch(uint64_t block, const KeySchedule& ks, F32x4 (&z)[kSets][4]) {
  U32x4 x[kSets][4];
  philox_batch(block, ks, x);
  for (int c = 0; c < kSets; ++c) {
    F32x4 a0, a1, b0, b1;
    box_muller_x4(x[c][0], x[c][1], a0, a1);
    box_muller_x4(x[c][2], x[c][3], b0, b1);
    // Block j of the set owns elements (a0[j], a1[j], b0[j], b1[j]): a 4×4 transpose puts them side by side.
    const v128_t lo01 = wasm_i32x4_shuffle(bits_as<v128_t>(a0), bits_as<v128_t>(a1), 0, 4, 1, 5);
    const v128_t hi01 = wasm_i32x4_shuffle(bits_as<v128_t>(a0), bits_as<v128_t>(a1), 2, 6, 3, 7);
    const v128_t lo23 = wasm_i32x4_shuffle(bits_as<v128_t>(b0), bits_as<v128_t>(b1), 0, 4, 1, 5);
    const v128_t hi23 = wasm_i32x4_shuffle(bits_as<v128_t>(b0), bits_as<v128_t>(b1), 2, 6, 3, 7);
    z[c][0] = bits_as<F32x4>(wasm_i64x2_shuffle(lo01, lo23, 0, 2));
    z[c][1] = bits_as<F32x4>(wasm_i64x2_shuffle(lo01, lo23, 1, 3));
    z[c][2] = bits_as<F32x4>(wasm_i64x2_shuffle(hi01, hi23, 0, 2));
    z[c][3] = bits_as<F32x4>(wasm_i64x2_shuffle(hi01, hi23, 1, 3));
  }
}

void gaussian_range(float* slab, const Entry& entry, uint64_t offset, size_t start, size_t end) {
  const float s = entry.scale;
  const F32x4 scale = splat_f32(s);
  const KeySchedule ks(entry.k0, entry.k1);
  F32x4 z[kSets][4];
  size_t i = start;
  while (i < end) {
    const uint64_t g = offset + i;
    const size_t lane = static_cast<size_t>(g % kGaussianPerBlock);
    gaussian_batch(g / kGaussianPerBlock, ks, z);
    const size_t left = end - i;
    float* out = slab + i;
    if (lane == 0 && left >= kBatchElements) {
      // The bulk of a range: whole vectors, slab[i] = f32(slab[i] + f32(s·z)) four elements at a time.
      for (int c = 0; c < kSets; ++c) {
        for (int r = 0; r < 4; ++r) {
          float* at = out + 16 * c + 4 * r;
          wasm_v128_store(at, bits_as<v128_t>(bits_as<F32x4>(wasm_v128_load(at)) + scale * z[c][r]));
        }
      }
      i += kBatchElements;
      continue;
    }
    // The ragged ends: element by element from the batch, starting at the lane of element i.
    const float* noise = reinterpret_cast<const float*>(z) + lane;
    const size_t n = kBatchElements - lane < left ? kBatchElements - lane : left;
    for (size_t j = 0; j < n; ++j) out[j] = out[j] + s * noise[j];
    i += n;
  }
}

// Rademacher draws one Philox block per 128 elements and is bound by memory traffic: the portable kernel's path.
void rademacher_range(float* slab, const Entry& entry, uint64_t offset, size_t start, size_t end) {
  generic_kernel().accumulate(slab, &entry, 1, offset, start, end, kDistRademacher);
}

// An i64 parameter would reach JavaScript as a BigInt; offsets stay below 2^53 (contract.ts MAX_GLOBAL_INDEX),
// so a double carries them exactly.
inline uint64_t offset_from_double(double offset) { return static_cast<uint64_t>(offset); }

}  // namespace
}  // namespace mezo_noise

extern "C" {

// out[0..4) = Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1).
__attribute__((export_name("philox"))) void mezo_philox(uint32_t* out, uint32_t c0, uint32_t c1, uint32_t c2,
                                                        uint32_t c3, uint32_t k0, uint32_t k1) {
  const mezo_noise::Philox4 w = mezo_noise::philox4x32_10(c0, c1, c2, c3, k0, k1);
  for (int i = 0; i < 4; ++i) out[i] = w.v[i];
}

// Applies entries[0 .. count) ({k0, k1, scale} triples) in order to slab[start .. end), slab[0] having global
// index `offset`, exactly as `count` perturbs would: the native addon's accumulate.
__attribute__((export_name("accumulate"))) void mezo_accumulate(float* slab, const mezo_noise::Entry* entries,
                                                                uint32_t count, double offset, uint32_t start,
                                                                uint32_t end, int32_t distribution) {
  mezo_noise::accumulate_in_chunks(slab, entries, count, mezo_noise::offset_from_double(offset), start, end,
                                   distribution, mezo_noise::gaussian_range, mezo_noise::rademacher_range);
}

// The same through the portable kernel alone (no SIMD Gaussian path): tests hold the two paths to the same bits.
__attribute__((export_name("accumulate_portable"))) void mezo_accumulate_portable(
    float* slab, const mezo_noise::Entry* entries, uint32_t count, double offset, uint32_t start, uint32_t end,
    int32_t distribution) {
  mezo_noise::generic_kernel().accumulate(slab, entries, count, mezo_noise::offset_from_double(offset), start,
                                          end, distribution);
}

// slab[i] = f32(slab[i] + value) over [0, length): the read+write floor benchmarks compare the kernel with.
__attribute__((export_name("add_scalar"))) void mezo_add_scalar(float* slab, uint32_t length, float value) {
  for (uint32_t i = 0; i < length; ++i) slab[i] = slab[i] + value;
}

}  // extern "C"

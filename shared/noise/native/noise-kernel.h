// The native noise kernel: constants of the noise contract (shared/noise/contract.ts), the scalar Box–Muller
// transform that every vector path must reproduce bit for bit, and the table through which the addon reaches
// the generic and the AVX2 implementations.
//
// Every float operation here is a single binary32 operation rounded to nearest: the build passes
// -ffp-contract=off (no fused multiply-add) and no fast-math flag, so `a * b + c` is two roundings, as in the
// TypeScript kernel (shared/noise/js-kernel.ts), which rounds every step with Math.fround.
#ifndef MEZO_NOISE_NOISE_KERNEL_H
#define MEZO_NOISE_NOISE_KERNEL_H

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "philox.h"

namespace mezo_noise {

constexpr uint32_t kStreamGaussian = 0;
constexpr uint32_t kStreamRademacher = 1;
constexpr int kDistGaussian = 0;
constexpr int kDistRademacher = 1;
constexpr int kDistLowRank = 2;
// Low-rank extension (lowrank v1): U from stream 2 under the seed's key, V from stream 3 under (k1, 0).
constexpr uint32_t kStreamLowRankU = 2;
constexpr uint32_t kStreamLowRankV = 3;
constexpr int kMaxLowRank = 64;
constexpr uint64_t kGaussianPerBlock = 4;
constexpr uint64_t kRademacherPerBlock = 128;

// Float constants, spelled as hex-float literals; the comments give the binary32 bit patterns of contract.ts,
// and the static_asserts below check the two agree.
constexpr float kSqrt2 = 0x1.6a09e6p+0f;       // 0x3fb504f3
constexpr float kLn2 = 0x1.62e430p-1f;         // 0x3f317218
constexpr float kLogC3 = 0x1.555556p-2f;       // 0x3eaaaaab
constexpr float kLogC5 = 0x1.99999ap-3f;       // 0x3e4ccccd
constexpr float kLogC7 = 0x1.24924ap-3f;       // 0x3e124925
constexpr float kLogC9 = 0x1.c71c72p-4f;       // 0x3de38e39
constexpr float kAngleStep = 0x1.921fb6p-22f;  // f32(pi/4) = 0x3f490fdb, times 2^-21
constexpr float kSinC3 = -0x1.555556p-3f;      // 0xbe2aaaab
constexpr float kSinC5 = 0x1.111112p-7f;       // 0x3c088889
constexpr float kSinC7 = -0x1.a01a02p-13f;     // 0xb9500d01
constexpr float kSinC9 = 0x1.71de3ap-19f;      // 0x3638ef1d
constexpr float kCosC2 = -0x1.0p-1f;           // 0xbf000000
constexpr float kCosC4 = 0x1.555556p-5f;       // 0x3d2aaaab
constexpr float kCosC6 = -0x1.6c16c2p-10f;     // 0xbab60b61
constexpr float kCosC8 = 0x1.a01a02p-16f;      // 0x37d00d01

#if defined(__GNUC__) || defined(__clang__)
static_assert(__builtin_bit_cast(uint32_t, kSqrt2) == 0x3fb504f3u, "SQRT2");
static_assert(__builtin_bit_cast(uint32_t, kLn2) == 0x3f317218u, "LN2");
static_assert(__builtin_bit_cast(uint32_t, kLogC3) == 0x3eaaaaabu, "LOG_C3");
static_assert(__builtin_bit_cast(uint32_t, kLogC5) == 0x3e4ccccdu, "LOG_C5");
static_assert(__builtin_bit_cast(uint32_t, kLogC7) == 0x3e124925u, "LOG_C7");
static_assert(__builtin_bit_cast(uint32_t, kLogC9) == 0x3de38e39u, "LOG_C9");
static_assert(__builtin_bit_cast(uint32_t, kAngleStep * 0x1.0p+21f) == 0x3f490fdbu, "ANGLE_STEP");
static_assert(__builtin_bit_cast(uint32_t, kSinC3) == 0xbe2aaaabu, "SIN_C3");
static_assert(__builtin_bit_cast(uint32_t, kSinC5) == 0x3c088889u, "SIN_C5");
static_assert(__builtin_bit_cast(uint32_t, kSinC7) == 0xb9500d01u, "SIN_C7");
static_assert(__builtin_bit_cast(uint32_t, kSinC9) == 0x3638ef1du, "SIN_C9");
static_assert(__builtin_bit_cast(uint32_t, kCosC2) == 0xbf000000u, "COS_C2");
static_assert(__builtin_bit_cast(uint32_t, kCosC4) == 0x3d2aaaabu, "COS_C4");
static_assert(__builtin_bit_cast(uint32_t, kCosC6) == 0xbab60b61u, "COS_C6");
static_assert(__builtin_bit_cast(uint32_t, kCosC8) == 0x37d00d01u, "COS_C8");
#endif

inline uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

inline float float_from_bits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

inline float sqrt_f32(float value) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_sqrtf(value);  // one instruction under -fno-math-errno; never a libm call
#else
#error "a GCC-compatible compiler is required"
#endif
}

// Box–Muller on one pair of Philox words: z0 = r·cos θ, z1 = r·sin θ (docs/noise.md, js-kernel.ts boxMuller).
// The choices are made with integer masks rather than branches so that loops over it vectorise; each is exact
// (halving m is decrementing its exponent, negating is flipping the sign bit).
inline void box_muller(uint32_t radius_word, uint32_t angle_word, float& z0, float& z1) {
  // u = x·2^-24 in (0, 1], x = m·2^e; x ≤ 2^24 is exact as a float, whose fields give m in [1, 2) and e.
  // (Conversions go through int32_t, exact for these small values, since signed conversions vectorise better.)
  const uint32_t x_bits = float_bits(static_cast<float>(static_cast<int32_t>((radius_word >> 8) + 1u)));
  const float m0 = float_from_bits((x_bits & 0x007FFFFFu) | 0x3F800000u);
  const uint32_t halve = 0u - static_cast<uint32_t>(m0 > kSqrt2);  // all ones where m > √2
  const float m = float_from_bits(float_bits(m0) - (halve & 0x00800000u));  // m·0.5 there
  const int32_t e = static_cast<int32_t>(x_bits >> 23) - 127 + static_cast<int32_t>(halve & 1u);
  const float s = (m - 1.0f) / (m + 1.0f);
  const float s2 = s * s;
  float p = kLogC9;
  p = p * s2 + kLogC7;
  p = p * s2 + kLogC5;
  p = p * s2 + kLogC3;
  p = p * s2 + 1.0f;
  const float ln_m = (2.0f * s) * p;
  const float ln_u = static_cast<float>(e - 24) * kLn2 + ln_m;
  const float r = sqrt_f32(-2.0f * ln_u);

  // θ = octant·π/4 + y; odd octants count y down from π/4 by complementing the 21 bits.
  const uint32_t v = angle_word >> 8;
  const uint32_t octant = v >> 21;
  const uint32_t t = (v & 0x1FFFFFu) ^ ((0u - (octant & 1u)) & 0x1FFFFFu);
  const float y = (static_cast<float>(static_cast<int32_t>(t)) + 0.5f) * kAngleStep;
  const float y2 = y * y;
  float q = kSinC9;
  q = q * y2 + kSinC7;
  q = q * y2 + kSinC5;
  q = q * y2 + kSinC3;
  const float sin_y = y + (y * y2) * q;
  q = kCosC8;
  q = q * y2 + kCosC6;
  q = q * y2 + kCosC4;
  q = q * y2 + kCosC2;
  const float cos_y = 1.0f + y2 * q;

  // Swap sin and cos where ((octant + 1) >> 1) & 1; negate cos where ((octant + 2) >> 2) & 1, sin where octant >> 2.
  const uint32_t swap = 0u - (((octant + 1u) >> 1) & 1u);
  const uint32_t exchange = (float_bits(cos_y) ^ float_bits(sin_y)) & swap;
  const uint32_t cos_sign = (((octant + 2u) >> 2) & 1u) << 31;
  const uint32_t sin_sign = (octant >> 2) << 31;
  const float cos_theta = float_from_bits(float_bits(cos_y) ^ exchange ^ cos_sign);
  const float sin_theta = float_from_bits(float_bits(sin_y) ^ exchange ^ sin_sign);
  z0 = r * cos_theta;
  z1 = r * sin_theta;
}

// One term of a perturbation or an accumulation: noise under key (k0, k1), multiplied by scale.
struct Entry {
  uint32_t k0;
  uint32_t k1;
  float scale;
};

// Applies entries[0 .. count) in order to slab[start .. end), element i having global index offset + i:
// slab[i] = f32(slab[i] + f32(scale · z)) for each entry, exactly as `count` separate perturbs would.
using AccumulateFn = void (*)(float* slab, const Entry* entries, size_t count, uint64_t offset, size_t start,
                              size_t end, int distribution);

// One matrix of a low-rank layout, in global index coordinates, row-major.
struct LowRankMatrix {
  uint64_t offset;
  uint64_t rows;
  uint64_t cols;
};

// A checked layout (addon.cc): 1 <= rank <= 64, matrices sorted by offset and disjoint.
struct LowRankLayout {
  int rank;
  const LowRankMatrix* matrices;
  size_t count;
};

// out[j] = f32(out[j] + f32(scale · f32(c · acc_j))) for j in [0, n), acc_j = Σ_k u[k]·v[k·stride + j] summed left
// to right from f32(u[0]·v[j]): one row of a matrix's low-rank noise, v holding V column-block by rank index.
using LowRankRowFn = void (*)(float* out, size_t n, const float* u, const float* v, size_t stride, int rank, float c,
                              float scale);

struct KernelImpl {
  const char* name;
  AccumulateFn accumulate;
  LowRankRowFn lowrank_row;
};

// Elements per chunk of a fused accumulate (64 KiB of floats, well within L2): every entry is applied to a chunk
// before the next, so the slab streams through memory once whatever the number of entries. Chunks end on
// multiples of this global index, a multiple of the widest vector runs, so whole chunks take the bulk paths.
constexpr uint64_t kAccumulateChunk = 16384;

// The accumulate loop both kernels share: entry k reaches a chunk only after entries 0 .. k-1 have, so the result
// equals successive perturbs. `gaussian` and `rademacher` apply one entry to [from, to); each kernel passes its
// own, so this loop never needs the kernels' instruction-set attributes.
template <typename GaussianRange, typename RademacherRange>
inline void accumulate_in_chunks(float* slab, const Entry* entries, size_t count, uint64_t offset, size_t start,
                                 size_t end, int distribution, GaussianRange gaussian, RademacherRange rademacher) {
  const auto apply = [&](const Entry& entry, size_t from, size_t to) {
    if (distribution == kDistRademacher) {
      rademacher(slab, entry, offset, from, to);
    } else {
      gaussian(slab, entry, offset, from, to);
    }
  };
  if (count == 1) {
    apply(entries[0], start, end);
    return;
  }
  size_t i = start;
  while (i < end) {
    // Chunks end on multiples of kAccumulateChunk in global index, so bulk chunks stay block-aligned.
    const size_t to_boundary = static_cast<size_t>(kAccumulateChunk - (offset + i) % kAccumulateChunk);
    const size_t chunk_end = i + to_boundary < end ? i + to_boundary : end;
    for (size_t k = 0; k < count; ++k) apply(entries[k], i, chunk_end);
    i = chunk_end;
  }
}

// ---- low-rank extension ----------------------------------------------------------------------------------------

// The body of every kernel's LowRankRowFn, inlined into each so that it is compiled for the kernel's instruction
// set. Columns go in tiles so that each step is a loop over consecutive columns, which vectorises while every
// element still sees exactly the scalar sequence of roundings (no FMA: -ffp-contract=off).
__attribute__((always_inline)) inline void lowrank_row_body(float* out, size_t n, const float* u, const float* v,
                                                            size_t stride, int rank, float c, float scale) {
  constexpr size_t kTile = 64;
  float acc[kTile];
  for (size_t b = 0; b < n; b += kTile) {
    const size_t w = n - b < kTile ? n - b : kTile;
    const float u0 = u[0];
    const float* v0 = v + b;
    for (size_t j = 0; j < w; ++j) acc[j] = u0 * v0[j];
    for (int k = 1; k < rank; ++k) {
      const float uk = u[k];
      const float* vk = v + static_cast<size_t>(k) * stride + b;
      for (size_t j = 0; j < w; ++j) acc[j] = acc[j] + uk * vk[j];
    }
    float* o = out + b;
    for (size_t j = 0; j < w; ++j) o[j] = o[j] + scale * (acc[j] * c);
  }
}

// out[j] = the Gaussian mapping of element index first + j drawn from `stream` under (k0, k1), j in [0, count).
inline void gaussian_values(float* out, size_t count, uint64_t first, uint32_t k0, uint32_t k1, uint32_t stream) {
  size_t j = 0;
  while (j < count) {
    const uint64_t g = first + j;
    const uint64_t block = g / kGaussianPerBlock;
    const Philox4 w =
        philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), stream, 0, k0, k1);
    float z[4];
    box_muller(w.v[0], w.v[1], z[0], z[1]);
    box_muller(w.v[2], w.v[3], z[2], z[3]);
    for (size_t lane = static_cast<size_t>(g % kGaussianPerBlock); lane < kGaussianPerBlock && j < count; ++lane, ++j) {
      out[j] = z[lane];
    }
  }
}

// c_r = f32(1/√r), rounded once from double, as the contract defines it.
inline float lowrank_scale(int rank) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(rank))); }

// The low-rank part of one matrix (global offset o, n columns) under one entry: adds scale·z to the slab elements
// whose matrix-local index lies in [from, to), slab element i having local index offset + i − o. Scratch holds V
// for the columns touched (rank-major) and U for one row; it lives for this call only.
inline void lowrank_matrix(const KernelImpl& impl, float* slab, const Entry& entry, uint64_t offset, uint64_t o,
                           uint64_t n, int rank, uint64_t from, uint64_t to, std::vector<float>& scratch) {
  const uint64_t first_row = from / n;
  const uint64_t last_row = (to - 1) / n;
  // Columns needed: those of the one partial row, or all of them once the range crosses a row boundary.
  const uint64_t col_lo = first_row == last_row ? from - first_row * n : 0;
  const uint64_t col_hi = first_row == last_row ? to - first_row * n : n;
  const size_t width = static_cast<size_t>(col_hi - col_lo);
  const size_t r = static_cast<size_t>(rank);
  scratch.resize(width * r + 2 * r);
  float* v = scratch.data();
  float* drawn = v + width * r;  // r values of one column (for V) or one row (U)
  float* u = drawn;
  // V[k][b] = v_k of column col_lo + b, drawn under the high word only.
  for (size_t b = 0; b < width; ++b) {
    gaussian_values(drawn + r, r, o + (col_lo + b) * r, entry.k1, 0, kStreamLowRankV);
    for (size_t k = 0; k < r; ++k) v[k * width + b] = drawn[r + k];
  }
  const float c = lowrank_scale(rank);
  const uint64_t base = o - offset;  // slab index of the matrix's element 0 (may wrap; only sums are used)
  for (uint64_t a = first_row; a <= last_row; ++a) {
    gaussian_values(u, r, o + a * r, entry.k0, entry.k1, kStreamLowRankU);
    const uint64_t row_start = a * n;
    const uint64_t b_from = std::max(from, row_start) - row_start;
    const uint64_t b_to = std::min(to, row_start + n) - row_start;
    float* out = slab + static_cast<size_t>(base + row_start + b_from);
    impl.lowrank_row(out, static_cast<size_t>(b_to - b_from), u, v + (b_from - col_lo), width, rank, c, entry.scale);
  }
}

// Applies entries[0 .. count) in order to slab[start .. end) under a low-rank layout: the layout's matrices take
// U·Vᵀ/√r, every other element the Gaussian (through impl.accumulate). Each element sees the entries in order, so
// the result equals successive perturbs; it depends only on the element's global index, so any split of the
// range (threads) gives the same bits.
inline void accumulate_lowrank(const KernelImpl& impl, float* slab, const Entry* entries, size_t count,
                               uint64_t offset, size_t start, size_t end, const LowRankLayout& layout) {
  const uint64_t g_start = offset + start;
  const uint64_t g_end = offset + end;
  // First matrix ending after g_start (disjoint and sorted, so the ends are sorted too).
  const LowRankMatrix* first = std::partition_point(
      layout.matrices, layout.matrices + layout.count,
      [g_start](const LowRankMatrix& m) { return m.offset + m.rows * m.cols <= g_start; });
  std::vector<float> scratch;
  uint64_t g = g_start;
  for (const LowRankMatrix* m = first; m != layout.matrices + layout.count && g < g_end; ++m) {
    if (m->offset >= g_end) break;
    if (g < m->offset) {
      impl.accumulate(slab, entries, count, offset, static_cast<size_t>(g - offset),
                      static_cast<size_t>(m->offset - offset), kDistGaussian);
      g = m->offset;
    }
    const uint64_t stop = std::min(m->offset + m->rows * m->cols, g_end);
    for (size_t k = 0; k < count; ++k) {
      lowrank_matrix(impl, slab, entries[k], offset, m->offset, m->cols, layout.rank, g - m->offset,
                     stop - m->offset, scratch);
    }
    g = stop;
  }
  if (g < g_end) impl.accumulate(slab, entries, count, offset, static_cast<size_t>(g - offset), end, kDistGaussian);
}

const KernelImpl& generic_kernel();
// Null where the AVX2 kernel is not compiled in (non-x86-64 targets).
const KernelImpl* avx2_kernel();

}  // namespace mezo_noise

#endif  // MEZO_NOISE_NOISE_KERNEL_H

// The portable kernel: plain C++ loops over small fixed-size batches, written so that the compiler can vectorise
// them for the baseline instruction set (SSE2 on x86-64, NEON on arm64). It is also the fallback on x86-64 CPUs
// without AVX2, and the path MEZO_NOISE_SIMD=generic selects.
#include <algorithm>

#include "noise-kernel.h"

namespace mezo_noise {
namespace {

constexpr size_t kBatchBlocks = 8;
constexpr size_t kBatchElements = kBatchBlocks * kGaussianPerBlock;

// z[0 .. 32) = the Gaussian values of global elements 4·block .. 4·block + 31. Each loop runs over the eight blocks
// with a straight-line body (Philox's rounds fully unrolled), the shape the auto-vectoriser handles.
void gaussian_batch(uint64_t block, uint32_t k0, uint32_t k1, float* z) {
  uint32_t w0[kBatchBlocks], w1[kBatchBlocks], w2[kBatchBlocks], w3[kBatchBlocks];
  for (size_t j = 0; j < kBatchBlocks; ++j) {
    const uint64_t b = block + j;
    uint32_t x0 = static_cast<uint32_t>(b), x1 = static_cast<uint32_t>(b >> 32), x2 = kStreamGaussian, x3 = 0;
    uint32_t key0 = k0, key1 = k1;
#pragma GCC unroll 10
    for (int round = 0; round < kPhiloxRounds; ++round) {
      const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * x0;
      const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * x2;
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ x1 ^ key0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ x3 ^ key1;
      x1 = static_cast<uint32_t>(p1);
      x3 = static_cast<uint32_t>(p0);
      x0 = n0;
      x2 = n2;
      key0 += kPhiloxW0;
      key1 += kPhiloxW1;
    }
    w0[j] = x0;
    w1[j] = x1;
    w2[j] = x2;
    w3[j] = x3;
  }
  float a0[kBatchBlocks], a1[kBatchBlocks], b0[kBatchBlocks], b1[kBatchBlocks];
  for (size_t j = 0; j < kBatchBlocks; ++j) {
    box_muller(w0[j], w1[j], a0[j], a1[j]);
    box_muller(w2[j], w3[j], b0[j], b1[j]);
  }
  for (size_t j = 0; j < kBatchBlocks; ++j) {
    z[4 * j + 0] = a0[j];
    z[4 * j + 1] = a1[j];
    z[4 * j + 2] = b0[j];
    z[4 * j + 3] = b1[j];
  }
}

void gaussian_range(float* slab, const Entry& entry, uint64_t offset, size_t start, size_t end) {
  const float s = entry.scale;
  alignas(32) float z[kBatchElements];
  size_t i = start;
  while (i < end) {
    const uint64_t g = offset + i;
    const size_t lane = static_cast<size_t>(g % kGaussianPerBlock);
    gaussian_batch(g / kGaussianPerBlock, entry.k0, entry.k1, z);
    const size_t n = std::min(kBatchElements - lane, end - i);
    float* out = slab + i;
    const float* noise = z + lane;
    for (size_t j = 0; j < n; ++j) out[j] = out[j] + s * noise[j];
    i += n;
  }
}

// Adds ±scale to the 32 elements at out, the sign of element b being bit b of word (set: −scale). Written with
// GCC/Clang vector extensions (four lanes: SSE2 on x86-64, NEON on arm64): each lane tests its own bit of the
// broadcast word and turns it into a sign that is xored into scale's bits.
typedef uint32_t U32x4 __attribute__((vector_size(16)));
typedef int32_t I32x4 __attribute__((vector_size(16)));
typedef float F32x4 __attribute__((vector_size(16)));

inline void rademacher_word(float* out, uint32_t word, uint32_t scale_bits) {
  const U32x4 bits = {word, word, word, word};
  const U32x4 scale = {scale_bits, scale_bits, scale_bits, scale_bits};
  for (uint32_t q = 0; q < 8; ++q) {
    const U32x4 lane_bit = {1u << (4 * q), 1u << (4 * q + 1), 1u << (4 * q + 2), 1u << (4 * q + 3)};
    const I32x4 set = (bits & lane_bit) != 0;  // −1 where the bit is set
    const U32x4 value_bits = scale ^ (reinterpret_cast<const U32x4&>(set) & 0x80000000u);
    F32x4 value;
    std::memcpy(&value, &value_bits, sizeof value);
    F32x4 current;
    std::memcpy(&current, out + 4 * q, sizeof current);
    current = current + value;
    std::memcpy(out + 4 * q, &current, sizeof current);
  }
}

void rademacher_range(float* slab, const Entry& entry, uint64_t offset, size_t start, size_t end) {
  const uint32_t scale_bits = float_bits(entry.scale);
  size_t i = start;
  while (i < end) {
    const uint64_t g = offset + i;
    const uint64_t block = g / kRademacherPerBlock;
    const size_t lane = static_cast<size_t>(g % kRademacherPerBlock);
    const Philox4 w = philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                                    kStreamRademacher, 0, entry.k0, entry.k1);
    const size_t n = std::min(static_cast<size_t>(kRademacherPerBlock) - lane, end - i);
    float* out = slab + i;
    if (n == kRademacherPerBlock) {
      for (size_t q = 0; q < 4; ++q) rademacher_word(out + 32 * q, w.v[q], scale_bits);
    } else {
      for (size_t j = 0; j < n; ++j) {
        const size_t l = lane + j;
        const uint32_t sign = ((w.v[l >> 5] >> (l & 31)) & 1u) << 31;
        out[j] = out[j] + float_from_bits(scale_bits ^ sign);
      }
    }
    i += n;
  }
}

void accumulate_generic(float* slab, const Entry* entries, size_t count, uint64_t offset, size_t start, size_t end,
                        int distribution) {
  accumulate_in_chunks(slab, entries, count, offset, start, end, distribution, gaussian_range, rademacher_range);
}

void lowrank_row_generic(float* out, size_t n, const float* u, const float* v, size_t stride, int rank, float c,
                         float scale) {
  lowrank_row_body(out, n, u, v, stride, rank, c, scale);
}

constexpr KernelImpl kGeneric{"generic", accumulate_generic, lowrank_row_generic};

}  // namespace

const KernelImpl& generic_kernel() { return kGeneric; }

}  // namespace mezo_noise

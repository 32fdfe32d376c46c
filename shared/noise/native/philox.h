// Philox4x32-10 (Salmon et al., SC'11), scalar form. The vector kernels (noise-kernel-avx2.cc) compute the same
// rounds eight blocks at a time; this is the definition they are tested against.
#ifndef MEZO_NOISE_PHILOX_H
#define MEZO_NOISE_PHILOX_H

#include <cstdint>

namespace mezo_noise {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;
constexpr int kPhiloxRounds = 10;

struct Philox4 {
  uint32_t v[4];
};

// One block: the four output words for counter (c0, c1, c2, c3) under key (k0, k1).
inline Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  uint32_t x0 = c0, x1 = c1, x2 = c2, x3 = c3;
  for (int round = 0; round < kPhiloxRounds; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * x0;
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * x2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ x1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ x3 ^ k1;
    x1 = static_cast<uint32_t>(p1);
    x3 = static_cast<uint32_t>(p0);
    x0 = n0;
    x2 = n2;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return Philox4{{x0, x1, x2, x3}};
}

}  // namespace mezo_noise

#endif  // MEZO_NOISE_PHILOX_H

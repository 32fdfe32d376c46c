// The N-API surface of the native noise kernel (shared/noise/kernel.ts, NoiseKernel). Every argument is checked
// here, before any memory is touched, and a bad one raises a TypeError (wrong type) or a RangeError (wrong value)
// whose message names it; on error the slab is unchanged.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "noise-kernel.h"

namespace mezo_noise {
namespace {

constexpr double kTwo32 = 4294967296.0;
constexpr uint64_t kMaxGlobalIndex = uint64_t{1} << 53;  // offset + slab.length may not exceed 2^53
constexpr int kMaxThreads = 256;
// Doubles at or beyond 2^128 − 2^103 round to ±Infinity as binary32.
constexpr double kFloat32Overflow = 0x1.ffffffp+127;
// Ranges shorter than this run on the calling thread; parts are never shorter than kMinPart elements.
constexpr size_t kParallelThreshold = size_t{1} << 20;
constexpr size_t kMinPart = size_t{1} << 16;
// Part boundaries fall on multiples of this global index, so that every part starts on a whole block.
constexpr uint64_t kPartAlign = kRademacherPerBlock;

std::atomic<int> g_threads{1};

}  // namespace

// The NEON kernel (noise-kernel-neon.cc); null where it is not compiled in (non-AArch64 targets). Declared here
// rather than in noise-kernel.h, which the WebAssembly build also compiles and hashes.
const KernelImpl* neon_kernel();

namespace {

// Chosen once, when the module is first loaded: MEZO_NOISE_SIMD=generic forces the portable kernel. AArch64 has
// NEON on every CPU, so there the build target alone selects it.
const KernelImpl& select_kernel() {
  const char* forced = std::getenv("MEZO_NOISE_SIMD");
  if (forced != nullptr && std::strcmp(forced, "generic") == 0) return generic_kernel();
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const KernelImpl* avx2 = avx2_kernel();
  __builtin_cpu_init();
  if (avx2 != nullptr && __builtin_cpu_supports("avx2")) return *avx2;
#endif
  if (const KernelImpl* neon = neon_kernel()) return *neon;
  return generic_kernel();
}

const KernelImpl& kernel() {
  static const KernelImpl& selected = select_kernel();
  return selected;
}

// ---- argument checks -------------------------------------------------------------------------------------------

[[noreturn]] void throw_type(Napi::Env env, const char* fn, const std::string& text) {
  throw Napi::TypeError::New(env, std::string(fn) + ": " + text);
}

[[noreturn]] void throw_range(Napi::Env env, const char* fn, const std::string& text) {
  throw Napi::RangeError::New(env, std::string(fn) + ": " + text);
}

// True when value is an integer in [lo, hi]; lo and hi lie within ±2^53. NaN and infinities fail the bounds.
bool is_integer_in(double value, double lo, double hi) {
  if (!(value >= lo && value <= hi)) return false;
  return value == static_cast<double>(static_cast<int64_t>(value));
}

struct Float32View {
  float* data;
  size_t length;
};

struct Uint32View {
  uint32_t* data;
  size_t length;
};

Float32View float32_arg(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  const Napi::Value value = info[index];
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw_type(info.Env(), fn, std::string(name) + " must be a Float32Array");
  }
  // Data() comes from napi_get_typedarray_info, which already adds the view's byteOffset.
  Napi::Float32Array array = value.As<Napi::Float32Array>();
  return Float32View{array.Data(), array.ElementLength()};
}

Uint32View uint32_arg(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  const Napi::Value value = info[index];
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    throw_type(info.Env(), fn, std::string(name) + " must be a Uint32Array");
  }
  Napi::Uint32Array array = value.As<Napi::Uint32Array>();
  return Uint32View{array.Data(), array.ElementLength()};
}

Uint32View uint32_array_of_length(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name,
                                  size_t length) {
  const std::string text = std::string(name) + " must be a Uint32Array of length " + std::to_string(length);
  const Napi::Value value = info[index];
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    throw_type(info.Env(), fn, text);
  }
  Napi::Uint32Array array = value.As<Napi::Uint32Array>();
  if (array.ElementLength() != length) throw_range(info.Env(), fn, text);
  return Uint32View{array.Data(), array.ElementLength()};
}

// A number that must be an integer in [lo, hi]; text is the whole requirement, naming the argument.
double integer_arg(const Napi::CallbackInfo& info, size_t index, const char* fn, double lo, double hi,
                   const std::string& text) {
  const Napi::Value value = info[index];
  if (!value.IsNumber()) throw_type(info.Env(), fn, text);
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!is_integer_in(number, lo, hi)) throw_range(info.Env(), fn, text);
  return number;
}

uint32_t key_word_arg(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  const double number =
      integer_arg(info, index, fn, 0.0, kTwo32 - 1.0, std::string(name) + " must be an integer in [0, 2^32)");
  return static_cast<uint32_t>(number);
}

// scale must be finite, and finite once rounded to binary32 (the precision the kernel computes in).
float scale_arg(const Napi::CallbackInfo& info, size_t index, const char* fn) {
  const char* text = "scale must be finite (and within the float32 range)";
  const Napi::Value value = info[index];
  if (!value.IsNumber()) throw_type(info.Env(), fn, text);
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!(number > -kFloat32Overflow && number < kFloat32Overflow)) throw_range(info.Env(), fn, text);
  return static_cast<float>(number);
}

uint64_t offset_arg(const Napi::CallbackInfo& info, size_t index, const char* fn, size_t slab_length) {
  const std::string text = "offset must be a non-negative integer and offset + slab.length <= 2^53";
  const double number = integer_arg(info, index, fn, 0.0, static_cast<double>(kMaxGlobalIndex), text);
  const uint64_t offset = static_cast<uint64_t>(number);
  if (static_cast<uint64_t>(slab_length) > kMaxGlobalIndex - offset) throw_range(info.Env(), fn, text);
  return offset;
}

struct Range {
  size_t start;
  size_t end;
};

Range range_args(const Napi::CallbackInfo& info, size_t index, const char* fn, size_t slab_length) {
  const double length = static_cast<double>(slab_length);
  const double start =
      integer_arg(info, index, fn, 0.0, length, "start must be an integer with 0 <= start <= slab.length");
  const double end =
      integer_arg(info, index + 1, fn, start, length, "end must be an integer with start <= end <= slab.length");
  return Range{static_cast<size_t>(start), static_cast<size_t>(end)};
}

int distribution_arg(const Napi::CallbackInfo& info, size_t index, const char* fn) {
  const double number = integer_arg(info, index, fn, 0.0, 2.0,
                                    "distribution must be 0 (Gaussian), 1 (Rademacher) or 2 (low-rank)");
  return number == 0.0 ? kDistGaussian : number == 1.0 ? kDistRademacher : kDistLowRank;
}

// A low-rank layout as the engine packs it (shared/noise/low-rank.ts): rank at `index`, then a Float64Array of
// (offset, rows, cols) triples. Copied out before the slab is written (the array may share the slab's buffer).
struct LowRankArgs {
  int rank;
  std::vector<LowRankMatrix> matrices;
  LowRankLayout layout() const { return LowRankLayout{rank, matrices.data(), matrices.size()}; }
};

LowRankArgs lowrank_args(const Napi::CallbackInfo& info, size_t index, const char* fn) {
  const Napi::Env env = info.Env();
  const double rank = integer_arg(info, index, fn, 1.0, kMaxLowRank, "rank must be an integer in [1, 64]");
  const Napi::Value value = info[index + 1];
  const char* type_text = "matrices must be a Float64Array of (offset, rows, cols) triples";
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw_type(env, fn, type_text);
  }
  Napi::Float64Array array = value.As<Napi::Float64Array>();
  if (array.ElementLength() % 3 != 0) throw_range(env, fn, type_text);
  const double* data = array.Data();
  const size_t count = array.ElementLength() / 3;
  const double max_index = static_cast<double>(kMaxGlobalIndex - 1);  // 2^53 − 1
  LowRankArgs args{static_cast<int>(rank), std::vector<LowRankMatrix>(count)};
  uint64_t previous_end = 0;
  for (size_t j = 0; j < count; ++j) {
    const std::string at = "matrices[" + std::to_string(j) + "]";
    const double offset = data[3 * j], rows = data[3 * j + 1], cols = data[3 * j + 2];
    if (!is_integer_in(offset, 0.0, max_index)) throw_range(env, fn, at + ".offset must be an integer in [0, 2^53)");
    if (!is_integer_in(rows, 1.0, max_index)) throw_range(env, fn, at + ".rows must be a positive integer");
    if (!is_integer_in(cols, 1.0, max_index)) throw_range(env, fn, at + ".cols must be a positive integer");
    // In doubles first (monotonic rounding, 2^53 exact), so that the integer products below cannot overflow.
    if (offset + rows * cols > max_index) throw_range(env, fn, at + ": offset + rows*cols must be <= 2^53 - 1");
    if (offset + std::max(rows, cols) * rank > max_index) {
      throw_range(env, fn, at + ": offset + max(rows, cols)*rank must be <= 2^53 - 1");
    }
    const LowRankMatrix m{static_cast<uint64_t>(offset), static_cast<uint64_t>(rows), static_cast<uint64_t>(cols)};
    if (j > 0 && m.offset < previous_end) throw_range(env, fn, at + ".offset overlaps or precedes the previous matrix");
    previous_end = m.offset + m.rows * m.cols;
    args.matrices[j] = m;
  }
  return args;
}

// ---- execution -------------------------------------------------------------------------------------------------

// Runs the kernel over [start, end), split into contiguous parts on threads of the addon's own when the range is
// large. Every element's result depends only on its own global index and the entries, so the split cannot change
// any bit of the output.
// One part of a range: the kernel's own loop, or the low-rank driver that calls it for the non-matrix elements.
void apply_part(const KernelImpl* impl, const Entry* entries, size_t count, float* slab, uint64_t offset,
                size_t start, size_t end, int distribution, const LowRankLayout* layout) {
  if (distribution == kDistLowRank) {
    accumulate_lowrank(*impl, slab, entries, count, offset, start, end, *layout);
  } else {
    impl->accumulate(slab, entries, count, offset, start, end, distribution);
  }
}

void run(const Entry* entries, size_t count, float* slab, uint64_t offset, size_t start, size_t end,
         int distribution, const LowRankLayout* layout) {
  if (count == 0 || start >= end) return;
  const KernelImpl& impl = kernel();
  const size_t length = end - start;
  size_t parts = 1;
  const int threads = g_threads.load(std::memory_order_relaxed);
  if (threads > 1 && length >= kParallelThreshold) {
    parts = std::min(static_cast<size_t>(threads), length / kMinPart);
  }
  if (parts <= 1) {
    apply_part(&impl, entries, count, slab, offset, start, end, distribution, layout);
    return;
  }
  std::vector<size_t> bounds(parts + 1);
  bounds[0] = start;
  bounds[parts] = end;
  for (size_t p = 1; p < parts; ++p) {
    // length < 2^53 and p < 256, so the product fits in 64 bits.
    const size_t even = start + static_cast<size_t>(static_cast<uint64_t>(length) * p / parts);
    const uint64_t aligned = (offset + even + kPartAlign - 1) / kPartAlign * kPartAlign;
    const size_t bound = static_cast<size_t>(aligned - offset);
    bounds[p] = std::max(bounds[p - 1], std::min(bound, end));
  }
  std::vector<std::thread> workers;
  workers.reserve(parts - 1);
  for (size_t p = 1; p < parts; ++p) {
    try {
      workers.emplace_back(apply_part, &impl, entries, count, slab, offset, bounds[p], bounds[p + 1], distribution,
                           layout);
    } catch (const std::system_error&) {
      break;  // no more threads to be had: the calling thread takes the remaining parts
    }
  }
  apply_part(&impl, entries, count, slab, offset, bounds[0], bounds[1], distribution, layout);
  for (size_t p = workers.size() + 1; p < parts; ++p) {
    apply_part(&impl, entries, count, slab, offset, bounds[p], bounds[p + 1], distribution, layout);
  }
  for (std::thread& worker : workers) worker.join();
}

// ---- exported functions ----------------------------------------------------------------------------------------

// philox(out: Uint32Array(4), counter: Uint32Array(4), key: Uint32Array(2)): void
void Philox(const Napi::CallbackInfo& info) {
  const char* fn = "philox";
  const Uint32View out = uint32_array_of_length(info, 0, fn, "out", 4);
  const Uint32View counter = uint32_array_of_length(info, 1, fn, "counter", 4);
  const Uint32View key = uint32_array_of_length(info, 2, fn, "key", 2);
  // All inputs are read before out is written, so the arrays may overlap.
  const Philox4 words =
      philox4x32_10(counter.data[0], counter.data[1], counter.data[2], counter.data[3], key.data[0], key.data[1]);
  for (int j = 0; j < 4; ++j) out.data[j] = words.v[j];
}

// perturb(slab, k0, k1, scale, offset, start, end, distribution[, rank, matrices]): void
void Perturb(const Napi::CallbackInfo& info) {
  const char* fn = "perturb";
  const Float32View slab = float32_arg(info, 0, fn, "slab");
  const uint32_t k0 = key_word_arg(info, 1, fn, "k0");
  const uint32_t k1 = key_word_arg(info, 2, fn, "k1");
  const float scale = scale_arg(info, 3, fn);
  const uint64_t offset = offset_arg(info, 4, fn, slab.length);
  const Range range = range_args(info, 5, fn, slab.length);
  const int distribution = distribution_arg(info, 7, fn);
  LowRankArgs lowrank{0, {}};
  if (distribution == kDistLowRank) lowrank = lowrank_args(info, 8, fn);
  const LowRankLayout layout = lowrank.layout();
  const Entry entry{k0, k1, scale};
  run(&entry, 1, slab.data, offset, range.start, range.end, distribution, &layout);
}

// accumulate(slab, keys: Uint32Array(2K), coeffs: Float32Array(K), offset, start, end, distribution[, rank, matrices])
void Accumulate(const Napi::CallbackInfo& info) {
  const char* fn = "accumulate";
  const Float32View slab = float32_arg(info, 0, fn, "slab");
  const Uint32View keys = uint32_arg(info, 1, fn, "keys");
  const Float32View coeffs = float32_arg(info, 2, fn, "coeffs");
  if (keys.length != 2 * coeffs.length) throw_range(info.Env(), fn, "keys.length must be 2 * coeffs.length");
  for (size_t k = 0; k < coeffs.length; ++k) {
    const float c = coeffs.data[k];
    if (!__builtin_isfinite(c)) throw_range(info.Env(), fn, "coeffs must hold finite values");
  }
  const uint64_t offset = offset_arg(info, 3, fn, slab.length);
  const Range range = range_args(info, 4, fn, slab.length);
  const int distribution = distribution_arg(info, 6, fn);
  LowRankArgs lowrank{0, {}};
  if (distribution == kDistLowRank) lowrank = lowrank_args(info, 7, fn);
  const LowRankLayout layout = lowrank.layout();
  // Copied before the slab is written: keys or coeffs may be views of the slab's own buffer.
  std::vector<Entry> entries(coeffs.length);
  for (size_t k = 0; k < coeffs.length; ++k) entries[k] = Entry{keys.data[2 * k], keys.data[2 * k + 1], coeffs.data[k]};
  run(entries.data(), entries.size(), slab.data, offset, range.start, range.end, distribution, &layout);
}

// addScalar(slab: Float32Array, value: number): void — slab[i] = f32(slab[i] + f32(value)) for every element, on the
// calling thread: the plain in-place read+write loop that benchmarks take as the memory-speed floor.
void AddScalar(const Napi::CallbackInfo& info) {
  const char* fn = "addScalar";
  const Float32View slab = float32_arg(info, 0, fn, "slab");
  const Napi::Value value = info[1];
  const char* text = "value must be finite (and within the float32 range)";
  if (!value.IsNumber()) throw_type(info.Env(), fn, text);
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!(number > -kFloat32Overflow && number < kFloat32Overflow)) throw_range(info.Env(), fn, text);
  const float addend = static_cast<float>(number);
  float* data = slab.data;
  for (size_t i = 0; i < slab.length; ++i) data[i] = data[i] + addend;
}

void SetThreads(const Napi::CallbackInfo& info) {
  const double number =
      integer_arg(info, 0, "setThreads", 1.0, kMaxThreads, "threads must be an integer in [1, 256]");
  g_threads.store(static_cast<int>(number), std::memory_order_relaxed);
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), g_threads.load(std::memory_order_relaxed));
}

Napi::Value Simd(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kernel().name); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  kernel();  // reads MEZO_NOISE_SIMD once, at load
  exports.Set("philox", Napi::Function::New(env, Philox, "philox"));
  exports.Set("perturb", Napi::Function::New(env, Perturb, "perturb"));
  exports.Set("accumulate", Napi::Function::New(env, Accumulate, "accumulate"));
  exports.Set("addScalar", Napi::Function::New(env, AddScalar, "addScalar"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads, "getThreads"));
  exports.Set("simd", Napi::Function::New(env, Simd, "simd"));
  // The low-rank extension's version this addon implements (shared/noise/native-binding.ts checks it).
  exports.Set("lowRankVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace
}  // namespace mezo_noise

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return mezo_noise::Init(env, exports); }

NODE_API_MODULE(mezo_noise, InitModule)

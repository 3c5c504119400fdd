// OsmnModulate: the modulated layer's scale and bias as one pass over the conv output.
//
//   y[k, h, w, c] = x[b, h, w, c] * gamma[k, c] + max(0, guide[k, h, w] * scale[c] + shift[c])
//
// with b = k when x has K samples and b = 0 when x has one (the frame shared by K objects).
// The same values as osmn/inference/engine/modulation_pass.py `modulate_xla`: float32
// arithmetic, one rounding to T at the end (round to nearest even), so the outputs are
// bit-identical. Why a custom op: the pass is memory-bound, and in bfloat16 XLA's CPU loop for it
// runs at about a third of the memory bandwidth that a vectorised loop reaches on the same map.
// When x has K samples and no other reader, the output reuses x's buffer (in place).
//
// OsmnModulatePoolTaps: the same pass for the LAST modulated conv of a side-output block
// (conv3_3, conv4_3, conv5_3), computed in one op with the two ops that read its output in
// inference: the 2x2 stride-2 SAME max pool into the next block and the side output's 1x1 product
// to the 9 folded kernel taps (osmn/inference/engine/inference_head.py `side_taps`). The
// modulated map is formed one pixel at a time in a small buffer and never written to memory,
// which saves a write and two reads of the largest maps of the frame.
//
// Built on first use by osmn/kernels/build.py with TF's own compile flags (no -march: TF's
// Eigen headers do not compile with AVX512-FP16 enabled). The bfloat16 loop has an AVX-512 BF16
// version compiled for that target alone and chosen at run time when the CPU has it; a portable
// scalar loop otherwise.

#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define OSMN_X86 1
#endif

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace osmn {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::bfloat16;
using ::tensorflow::errors::InvalidArgument;
namespace shape_inference = ::tensorflow::shape_inference;

REGISTER_OP("OsmnModulate")
    .Input("x: T")
    .Input("gamma: float")
    .Input("guide: float")
    .Input("scale: float")
    .Input("shift: float")
    .Output("y: T")
    .Attr("T: {bfloat16, float}")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      shape_inference::ShapeHandle x, guide;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 4, &guide));
      c->set_output(0, c->MakeShape({c->Dim(guide, 0), c->Dim(x, 1), c->Dim(x, 2),
                                     c->Dim(x, 3)}));
      return ::tensorflow::OkStatus();
    })
    .Doc("relu(guide * scale + shift) + x * gamma, one pass (OSMN inference).");

REGISTER_OP("OsmnModulatePoolTaps")
    .Input("x: T")
    .Input("gamma: float")
    .Input("guide: float")
    .Input("scale: float")
    .Input("shift: float")
    .Input("taps_kernel: float")
    .Output("pooled: T")
    .Output("taps: float")
    .Attr("T: {bfloat16, float}")
    .Attr("pool: bool = true")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      shape_inference::ShapeHandle x, guide, kernel;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 4, &guide));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(5), 2, &kernel));
      bool pool = true;
      TF_RETURN_IF_ERROR(c->GetAttr("pool", &pool));
      shape_inference::DimensionHandle half_h = c->MakeDim(0), half_w = c->MakeDim(0);
      if (pool) {  // ceil(n / 2): the SAME pool of odd sizes
        TF_RETURN_IF_ERROR(c->Add(c->Dim(x, 1), 1, &half_h));
        TF_RETURN_IF_ERROR(c->Divide(half_h, 2, false, &half_h));
        TF_RETURN_IF_ERROR(c->Add(c->Dim(x, 2), 1, &half_w));
        TF_RETURN_IF_ERROR(c->Divide(half_w, 2, false, &half_w));
      }
      c->set_output(0, c->MakeShape({c->Dim(guide, 0), half_h, half_w, c->Dim(x, 3)}));
      c->set_output(1, c->MakeShape({c->Dim(guide, 0), c->Dim(x, 1), c->Dim(x, 2),
                                     c->Dim(kernel, 0)}));
      return ::tensorflow::OkStatus();
    })
    .Doc("m = relu(guide * scale + shift) + x * gamma (rounded to T), then pooled = 2x2 SAME "
         "max pool of m (empty when pool is false) and taps = m @ taps_kernel^T, without "
         "writing m (OSMN inference, the last modulated conv of a side-output block).");

namespace {

inline float ToFloat(float v) { return v; }
inline float ToFloat(bfloat16 v) { return static_cast<float>(v); }
template <typename T> inline T FromFloat(float v) { return static_cast<T>(v); }

// One row of C channels, portable: y = x * g + max(0, guide * s + t).
template <typename T>
void RowScalar(const T* x, T* y, const float* gamma, float guide, const float* scale,
               const float* shift, int64_t from, int64_t channels) {
  for (int64_t c = from; c < channels; ++c) {
    const float bias = guide * scale[c] + shift[c];
    y[c] = FromFloat<T>(ToFloat(x[c]) * gamma[c] + (bias > 0.f ? bias : 0.f));
  }
}

#ifdef OSMN_X86
#define OSMN_AVX512_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

OSMN_AVX512_BF16_TARGET inline __m512 LoadBf16(const bfloat16* p) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

// 32 channels from c: y = x * gamma + max(0, g * scale + shift) in float32, rounded to
// nearest even bfloat16 by one vcvtne2ps2bf16 (the same rounding as XLA's convert).
OSMN_AVX512_BF16_TARGET inline __m512bh Modulate32(const bfloat16* x, const float* gamma,
                                                   __m512 g, const float* scale,
                                                   const float* shift, int64_t c) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512 b0 = _mm512_max_ps(
      _mm512_fmadd_ps(g, _mm512_loadu_ps(scale + c), _mm512_loadu_ps(shift + c)), zero);
  const __m512 b1 = _mm512_max_ps(
      _mm512_fmadd_ps(g, _mm512_loadu_ps(scale + c + 16), _mm512_loadu_ps(shift + c + 16)),
      zero);
  const __m512 y0 = _mm512_fmadd_ps(LoadBf16(x + c), _mm512_loadu_ps(gamma + c), b0);
  const __m512 y1 = _mm512_fmadd_ps(LoadBf16(x + c + 16), _mm512_loadu_ps(gamma + c + 16), b1);
  return _mm512_cvtne2ps_pbh(y1, y0);
}

// The bfloat16 row, 32 channels per step (`Modulate32`), then the scalar tail.
OSMN_AVX512_BF16_TARGET void RowAvx512Bf16(const bfloat16* x, bfloat16* y, const float* gamma,
                                           float guide, const float* scale, const float* shift,
                                           int64_t channels) {
  const __m512 g = _mm512_set1_ps(guide);
  int64_t c = 0;
  for (; c + 32 <= channels; c += 32) {
    _mm512_storeu_si512(reinterpret_cast<void*>(y + c),
                        reinterpret_cast<__m512i>(Modulate32(x, gamma, g, scale, shift, c)));
  }
  RowScalar(x, y, gamma, guide, scale, shift, c, channels);
}

bool CpuHasAvx512Bf16() {
  static const bool has = __builtin_cpu_supports("avx512f") &&
                          __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512bf16");
  return has;
}
#endif

template <typename T>
void Row(const T* x, T* y, const float* gamma, float guide, const float* scale,
         const float* shift, int64_t channels) {
  RowScalar(x, y, gamma, guide, scale, shift, 0, channels);
}

template <>
void Row<bfloat16>(const bfloat16* x, bfloat16* y, const float* gamma, float guide,
                   const float* scale, const float* shift, int64_t channels) {
#ifdef OSMN_X86
  if (CpuHasAvx512Bf16()) {
    RowAvx512Bf16(x, y, gamma, guide, scale, shift, channels);
    return;
  }
#endif
  RowScalar(x, y, gamma, guide, scale, shift, 0, channels);
}

// The first five inputs of both ops: x [B, h, w, C], gamma [K, C], guide [K, h, w, 1], scale
// and shift [C], with B = K or 1; their sizes and data.
template <typename T>
struct PassInputs {
  int64_t batch = 0, height = 0, width = 0, channels = 0, objects = 0;
  const T* x = nullptr;
  const float *gamma = nullptr, *guide = nullptr, *scale = nullptr, *shift = nullptr;
};

// Checks those inputs and fills `in`; on a mismatch the error is set on `context`.
template <typename T>
void ReadPassInputs(OpKernelContext* context, PassInputs<T>* in) {
  const Tensor& x = context->input(0);
  const Tensor& gamma = context->input(1);
  const Tensor& guide = context->input(2);
  const Tensor& scale = context->input(3);
  const Tensor& shift = context->input(4);
  OP_REQUIRES(context, x.dims() == 4,
              InvalidArgument("x must be [B, H, W, C], got ", x.shape().DebugString()));
  const int64_t batch = x.dim_size(0), height = x.dim_size(1), width = x.dim_size(2),
                channels = x.dim_size(3);
  OP_REQUIRES(context, guide.dims() == 4 && guide.dim_size(1) == height &&
                           guide.dim_size(2) == width && guide.dim_size(3) == 1,
              InvalidArgument("guide must be [K, ", height, ", ", width, ", 1], got ",
                              guide.shape().DebugString()));
  const int64_t objects = guide.dim_size(0);
  OP_REQUIRES(context, batch == objects || batch == 1,
              InvalidArgument("x has batch ", batch, ": must be 1 or K = ", objects));
  OP_REQUIRES(context, gamma.dims() == 2 && gamma.dim_size(0) == objects &&
                           gamma.dim_size(1) == channels,
              InvalidArgument("gamma must be [", objects, ", ", channels, "], got ",
                              gamma.shape().DebugString()));
  OP_REQUIRES(context, scale.NumElements() == channels && shift.NumElements() == channels,
              InvalidArgument("scale and shift must have ", channels, " values, got ",
                              scale.NumElements(), " and ", shift.NumElements()));
  *in = {batch, height, width, channels, objects, x.flat<T>().data(),
         gamma.flat<float>().data(), guide.flat<float>().data(), scale.flat<float>().data(),
         shift.flat<float>().data()};
}

template <typename T>
class ModulateOp : public OpKernel {
 public:
  explicit ModulateOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    PassInputs<T> in;
    ReadPassInputs(context, &in);
    if (!context->status().ok()) return;
    const int64_t batch = in.batch, height = in.height, width = in.width,
                  channels = in.channels, objects = in.objects;
    Tensor* y = nullptr;
    const TensorShape y_shape({objects, height, width, channels});
    if (batch == objects) {
      OP_REQUIRES_OK(context, context->forward_input_or_allocate_output({0}, 0, y_shape, &y));
    } else {
      OP_REQUIRES_OK(context, context->allocate_output(0, y_shape, &y));
    }
    const int64_t pixels = height * width;
    T* y_data = y->flat<T>().data();
    const bool shared = batch == 1;
    auto work = [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t k = row / pixels;
        const int64_t x_row = shared ? row % pixels : row;
        Row<T>(in.x + x_row * channels, y_data + row * channels, in.gamma + k * channels,
               in.guide[row], in.scale, in.shift, channels);
      }
    };
    auto* workers = context->device()->tensorflow_cpu_worker_threads();
    // Cost per row in cycles: about one cycle per channel (memory-bound).
    ::tensorflow::Shard(workers->num_threads, workers->workers, objects * pixels, channels,
                        work);
  }
};

// --- OsmnModulatePoolTaps ---------------------------------------------------------------

// The modulated pixel, already rounded to T, widened to float: m[c] = float(T(y[c])).
template <typename T>
void Widen(const T* row, float* m, int64_t channels) {
  for (int64_t c = 0; c < channels; ++c) m[c] = ToFloat(row[c]);
}

// out[t] = sum_c m[c] * kernel[t, c] for the `taps` rows of kernel [taps, C], float32.
void TapsScalar(const float* m, const float* kernel, int64_t taps, int64_t channels,
                float* out) {
  for (int64_t t = 0; t < taps; ++t) {
    float total = 0.f;
    for (int64_t c = 0; c < channels; ++c) total += m[c] * kernel[t * channels + c];
    out[t] = total;
  }
}

// The 2x2 max of up to four widened pixels, rounded back to T (exact: each is a T value).
template <typename T>
void MaxScalar(float* const* rows, int count, T* out, int64_t channels) {
  for (int64_t c = 0; c < channels; ++c) {
    float best = rows[0][c];
    for (int n = 1; n < count; ++n) best = rows[n][c] > best ? rows[n][c] : best;
    out[c] = FromFloat<T>(best);
  }
}

#ifdef OSMN_X86
#define OSMN_AVX512_TARGET __attribute__((target("avx512f,avx512bw")))

bool CpuHasAvx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return has;
}

// The nine (or fewer) tap sums with 16 channels per FMA; the same sums as TapsScalar up to
// the order of the float additions.
OSMN_AVX512_TARGET void TapsAvx512(const float* m, const float* kernel, int64_t taps,
                                   int64_t channels, float* out) {
  constexpr int kMaxTaps = 9;
  __m512 acc[kMaxTaps];
  for (int t = 0; t < kMaxTaps; ++t) acc[t] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= channels; c += 16) {
    const __m512 v = _mm512_loadu_ps(m + c);
    for (int t = 0; t < taps; ++t) {
      acc[t] = _mm512_fmadd_ps(v, _mm512_loadu_ps(kernel + t * channels + c), acc[t]);
    }
  }
  for (int t = 0; t < taps; ++t) {
    float total = _mm512_reduce_add_ps(acc[t]);
    for (int64_t r = c; r < channels; ++r) total += m[r] * kernel[t * channels + r];
    out[t] = total;
  }
}

OSMN_AVX512_BF16_TARGET void WidenAvx512Bf16(const bfloat16* row, float* m, int64_t channels) {
  int64_t c = 0;
  for (; c + 16 <= channels; c += 16) _mm512_storeu_ps(m + c, LoadBf16(row + c));
  for (; c < channels; ++c) m[c] = ToFloat(row[c]);
}

// Channels [0, channels) in steps of 16; the caller handles the tail.
OSMN_AVX512_BF16_TARGET void MaxAvx512Bf16(float* const* rows, int count, bfloat16* out,
                                           int64_t channels) {
  for (int64_t c = 0; c + 16 <= channels; c += 16) {
    __m512 best = _mm512_loadu_ps(rows[0] + c);
    for (int n = 1; n < count; ++n) best = _mm512_max_ps(best, _mm512_loadu_ps(rows[n] + c));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c),
                        reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(best)));
  }
}
#endif

void Taps(const float* m, const float* kernel, int64_t taps, int64_t channels, float* out) {
#ifdef OSMN_X86
  if (CpuHasAvx512() && taps <= 9) {
    TapsAvx512(m, kernel, taps, channels, out);
    return;
  }
#endif
  TapsScalar(m, kernel, taps, channels, out);
}

#ifdef OSMN_X86
// The whole bfloat16 pixel in one loop, for C a multiple of 32 and 9 taps: modulate 32
// channels in float32, round them to bfloat16 once (as the pass does), then (a) the nine tap
// sums with one vdpbf16ps each (products of bfloat16 values, exact in float32; the kernel is
// rounded to bfloat16 as the separate `side_taps` does), (b) the window maximum in `best`.
OSMN_AVX512_BF16_TARGET void PixelAvx512Bf16(const bfloat16* x, const float* gamma, float guide,
                                             const float* scale, const float* shift,
                                             const bfloat16* kernel, int64_t channels,
                                             float* taps, float* best, bool first) {
  const __m512 g = _mm512_set1_ps(guide);
  const __m512 zero = _mm512_setzero_ps();
  __m512 a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero,
         a7 = zero, a8 = zero;
  for (int64_t c = 0; c < channels; c += 32) {
    const __m512bh m = Modulate32(x, gamma, g, scale, shift, c);
    const bfloat16* k = kernel + c;
#define OSMN_TAP(t) a##t = _mm512_dpbf16_ps(a##t, m, reinterpret_cast<__m512bh>( \
                               _mm512_loadu_si512(k + (t) * channels)))
    OSMN_TAP(0); OSMN_TAP(1); OSMN_TAP(2); OSMN_TAP(3); OSMN_TAP(4); OSMN_TAP(5);
    OSMN_TAP(6); OSMN_TAP(7); OSMN_TAP(8);
#undef OSMN_TAP
    if (best != nullptr) {
      const __m512i raw = reinterpret_cast<__m512i>(m);
      const __m512 r0 = _mm512_castsi512_ps(_mm512_slli_epi32(
          _mm512_cvtepu16_epi32(_mm512_castsi512_si256(raw)), 16));
      const __m512 r1 = _mm512_castsi512_ps(_mm512_slli_epi32(
          _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(raw, 1)), 16));
      if (first) {
        _mm512_storeu_ps(best + c, r0);
        _mm512_storeu_ps(best + c + 16, r1);
      } else {
        _mm512_storeu_ps(best + c, _mm512_max_ps(_mm512_loadu_ps(best + c), r0));
        _mm512_storeu_ps(best + c + 16, _mm512_max_ps(_mm512_loadu_ps(best + c + 16), r1));
      }
    }
  }
  taps[0] = _mm512_reduce_add_ps(a0); taps[1] = _mm512_reduce_add_ps(a1);
  taps[2] = _mm512_reduce_add_ps(a2); taps[3] = _mm512_reduce_add_ps(a3);
  taps[4] = _mm512_reduce_add_ps(a4); taps[5] = _mm512_reduce_add_ps(a5);
  taps[6] = _mm512_reduce_add_ps(a6); taps[7] = _mm512_reduce_add_ps(a7);
  taps[8] = _mm512_reduce_add_ps(a8);
}

// best (float32 values that are bfloat16 numbers) -> bfloat16, exact.
OSMN_AVX512_BF16_TARGET void StoreBf16(const float* best, bfloat16* out, int64_t channels) {
  for (int64_t c = 0; c < channels; c += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c),
                        reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_loadu_ps(best + c))));
  }
}
#endif

template <typename T>
void WidenRow(const T* row, float* m, int64_t channels) { Widen(row, m, channels); }

template <>
void WidenRow<bfloat16>(const bfloat16* row, float* m, int64_t channels) {
#ifdef OSMN_X86
  if (CpuHasAvx512Bf16()) {
    WidenAvx512Bf16(row, m, channels);
    return;
  }
#endif
  Widen(row, m, channels);
}

template <typename T>
void MaxRows(float* const* rows, int count, T* out, int64_t channels) {
  MaxScalar(rows, count, out, channels);
}

template <>
void MaxRows<bfloat16>(float* const* rows, int count, bfloat16* out, int64_t channels) {
#ifdef OSMN_X86
  if (CpuHasAvx512Bf16()) {
    const int64_t vector = channels / 16 * 16;
    MaxAvx512Bf16(rows, count, out, vector);
    if (vector < channels) {
      float* tails[4];
      for (int n = 0; n < count; ++n) tails[n] = rows[n] + vector;
      MaxScalar(tails, count, out + vector, channels - vector);
    }
    return;
  }
#endif
  MaxScalar(rows, count, out, channels);
}

// Visits every source pixel of OsmnModulatePoolTaps once, sharded over output rows:
// pixel(scratch, k, r, s, n), n the pixel's place 0..3 in its 2x2 pooling window (0 without
// pooling); with pooling, then window(scratch, k, i, j, count) once per window of `count`
// pixels. `scratch` is made by make_scratch() once per shard.
template <typename MakeScratch, typename Pixel, typename Window>
void ForEachPixel(OpKernelContext* context, int64_t objects, int64_t height, int64_t width,
                  bool pool, int64_t cost_per_pixel, MakeScratch make_scratch, Pixel pixel,
                  Window window) {
  auto* workers = context->device()->tensorflow_cpu_worker_threads();
  if (!pool) {
    ::tensorflow::Shard(workers->num_threads, workers->workers, objects * height,
                        width * cost_per_pixel, [&](int64_t begin, int64_t end) {
      auto scratch = make_scratch();
      for (int64_t unit = begin; unit < end; ++unit) {  // unit = k * height + r
        for (int64_t s = 0; s < width; ++s) pixel(scratch, unit / height, unit % height, s, 0);
      }
    });
    return;
  }
  const int64_t pooled_h = (height + 1) / 2, pooled_w = (width + 1) / 2;
  ::tensorflow::Shard(workers->num_threads, workers->workers, objects * pooled_h,
                      4 * pooled_w * cost_per_pixel, [&](int64_t begin, int64_t end) {
    auto scratch = make_scratch();
    for (int64_t unit = begin; unit < end; ++unit) {  // unit = k * pooled_h + i
      const int64_t k = unit / pooled_h, i = unit % pooled_h;
      for (int64_t j = 0; j < pooled_w; ++j) {
        int count = 0;
        for (int64_t r = 2 * i; r < 2 * i + 2 && r < height; ++r) {
          for (int64_t s = 2 * j; s < 2 * j + 2 && s < width; ++s) {
            pixel(scratch, k, r, s, count++);
          }
        }
        window(scratch, k, i, j, count);
      }
    }
  });
}

template <typename T>
class ModulatePoolTapsOp : public OpKernel {
 public:
  explicit ModulatePoolTapsOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("pool", &pool_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& kernel = context->input(5);
    PassInputs<T> in;
    ReadPassInputs(context, &in);
    if (!context->status().ok()) return;
    const int64_t batch = in.batch, height = in.height, width = in.width,
                  channels = in.channels, objects = in.objects;
    OP_REQUIRES(context, kernel.dims() == 2 && kernel.dim_size(1) == channels &&
                             kernel.dim_size(0) >= 1 && kernel.dim_size(0) <= 9,
                InvalidArgument("taps_kernel must be [1..9, ", channels, "], got ",
                                kernel.shape().DebugString()));
    const int64_t taps = kernel.dim_size(0);
    const int64_t pooled_h = pool_ ? (height + 1) / 2 : 0;
    const int64_t pooled_w = pool_ ? (width + 1) / 2 : 0;
    Tensor* pooled = nullptr;
    Tensor* taps_out = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, TensorShape({objects, pooled_h, pooled_w, channels}), &pooled));
    OP_REQUIRES_OK(context, context->allocate_output(
                                1, TensorShape({objects, height, width, taps}), &taps_out));
    const float* kernel_data = kernel.flat<float>().data();
    T* pooled_data = pooled->flat<T>().data();
    float* taps_data = taps_out->flat<float>().data();
    const bool shared = batch == 1;
    // Flat index of source pixel (k, r, s) in guide and taps, and of its row of x.
    auto at = [&](int64_t k, int64_t r, int64_t s) { return (k * height + r) * width + s; };
    auto x_at = [&](int64_t k, int64_t r, int64_t s) {
      return shared ? r * width + s : at(k, r, s);
    };
    auto pooled_row = [&](int64_t k, int64_t i, int64_t j) {
      return pooled_data + ((k * pooled_h + i) * pooled_w + j) * channels;
    };
#ifdef OSMN_X86
    if (std::is_same<T, bfloat16>::value && CpuHasAvx512Bf16() && taps == 9 &&
        channels % 32 == 0) {
      // The whole-pixel AVX-512 BF16 loop (`PixelAvx512Bf16`), the window max kept in float.
      const bfloat16* x = reinterpret_cast<const bfloat16*>(in.x);
      std::vector<bfloat16> low(9 * channels);  // the kernel rounded as the separate ops do
      for (int64_t i = 0; i < 9 * channels; ++i) low[i] = static_cast<bfloat16>(kernel_data[i]);
      ForEachPixel(
          context, objects, height, width, pool_, channels * 8,
          [&] { return std::vector<float>(channels); },
          [&](std::vector<float>& best, int64_t k, int64_t r, int64_t s, int n) {
            PixelAvx512Bf16(x + x_at(k, r, s) * channels, in.gamma + k * channels,
                            in.guide[at(k, r, s)], in.scale, in.shift, low.data(), channels,
                            taps_data + at(k, r, s) * 9, pool_ ? best.data() : nullptr, n == 0);
          },
          [&](std::vector<float>& best, int64_t k, int64_t i, int64_t j, int) {
            StoreBf16(best.data(), reinterpret_cast<bfloat16*>(pooled_row(k, i, j)), channels);
          });
      return;
    }
#endif
    // Any T, C and tap count: modulate into a T row (rounded as the pass rounds), widen it into
    // the pixel's place in the window, write its taps; then the window's max.
    struct Scratch {
      std::vector<T> row;
      std::vector<float> widened;  // up to 4 pixels of C
    };
    ForEachPixel(
        context, objects, height, width, pool_, channels * (taps + 2),
        [&] { return Scratch{std::vector<T>(channels), std::vector<float>(4 * channels)}; },
        [&](Scratch& scratch, int64_t k, int64_t r, int64_t s, int n) {
          float* m = scratch.widened.data() + n * channels;
          Row<T>(in.x + x_at(k, r, s) * channels, scratch.row.data(), in.gamma + k * channels,
                 in.guide[at(k, r, s)], in.scale, in.shift, channels);
          WidenRow<T>(scratch.row.data(), m, channels);
          Taps(m, kernel_data, taps, channels, taps_data + at(k, r, s) * taps);
        },
        [&](Scratch& scratch, int64_t k, int64_t i, int64_t j, int count) {
          float* window[4];
          for (int n = 0; n < count; ++n) window[n] = scratch.widened.data() + n * channels;
          MaxRows<T>(window, count, pooled_row(k, i, j), channels);
        });
  }

 private:
  bool pool_ = true;
};

REGISTER_KERNEL_BUILDER(
    Name("OsmnModulatePoolTaps").Device(DEVICE_CPU).TypeConstraint<bfloat16>("T"),
    ModulatePoolTapsOp<bfloat16>);
REGISTER_KERNEL_BUILDER(
    Name("OsmnModulatePoolTaps").Device(DEVICE_CPU).TypeConstraint<float>("T"),
    ModulatePoolTapsOp<float>);

REGISTER_KERNEL_BUILDER(
    Name("OsmnModulate").Device(DEVICE_CPU).TypeConstraint<bfloat16>("T"),
    ModulateOp<bfloat16>);
REGISTER_KERNEL_BUILDER(
    Name("OsmnModulate").Device(DEVICE_CPU).TypeConstraint<float>("T"), ModulateOp<float>);

}  // namespace
}  // namespace osmn

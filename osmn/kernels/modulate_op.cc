// OsmnModulate: the modulated layer's scale and bias as one pass over the conv output.
//
//   y[k, h, w, c] = x[b, h, w, c] * gamma[k, c] + max(0, guide[k, h, w] * scale[c] + shift[c])
//
// with b = k when x has K samples and b = 0 when x has one (the frame shared by K objects).
// The same values as osmn/model/segmentation_network.py `_modulate` (XLA): float32 arithmetic,
// one rounding to T at the end (round to nearest even), so the outputs are bit-identical.
// Why a custom op: in bfloat16 XLA's CPU loop for this pass runs at about a third of the memory
// bandwidth that a vectorised loop reaches on the same map (docs/performance.md, item 13).
// When x has K samples and no other reader, the output reuses x's buffer (in place).
// Built on first use by osmn/kernels/build.py with TF's own compile flags (no -march: TF's
// Eigen headers do not compile with AVX512-FP16 enabled). The bfloat16 loop has an AVX-512 BF16
// version compiled for that target alone and chosen at run time when the CPU has it; a portable
// scalar loop otherwise.

#include <cstdint>

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

// The bfloat16 row, 32 channels per step: widen, two FMAs, round both halves to nearest even
// with one vcvtne2ps2bf16 (the same rounding as XLA's convert), then the scalar tail.
OSMN_AVX512_BF16_TARGET void RowAvx512Bf16(const bfloat16* x, bfloat16* y, const float* gamma,
                                           float guide, const float* scale, const float* shift,
                                           int64_t channels) {
  const __m512 g = _mm512_set1_ps(guide);
  const __m512 zero = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 32 <= channels; c += 32) {
    const __m512 b0 = _mm512_max_ps(
        _mm512_fmadd_ps(g, _mm512_loadu_ps(scale + c), _mm512_loadu_ps(shift + c)), zero);
    const __m512 b1 = _mm512_max_ps(
        _mm512_fmadd_ps(g, _mm512_loadu_ps(scale + c + 16), _mm512_loadu_ps(shift + c + 16)),
        zero);
    const __m512 y0 = _mm512_fmadd_ps(LoadBf16(x + c), _mm512_loadu_ps(gamma + c), b0);
    const __m512 y1 = _mm512_fmadd_ps(LoadBf16(x + c + 16), _mm512_loadu_ps(gamma + c + 16), b1);
    _mm512_storeu_si512(reinterpret_cast<void*>(y + c),
                        reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(y1, y0)));
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

template <typename T>
class ModulateOp : public OpKernel {
 public:
  explicit ModulateOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
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
    Tensor* y = nullptr;
    const TensorShape y_shape({objects, height, width, channels});
    if (batch == objects) {
      OP_REQUIRES_OK(context, context->forward_input_or_allocate_output({0}, 0, y_shape, &y));
    } else {
      OP_REQUIRES_OK(context, context->allocate_output(0, y_shape, &y));
    }
    const int64_t pixels = height * width;
    const T* x_data = x.flat<T>().data();
    T* y_data = y->flat<T>().data();
    const float* gamma_data = gamma.flat<float>().data();
    const float* guide_data = guide.flat<float>().data();
    const float* scale_data = scale.flat<float>().data();
    const float* shift_data = shift.flat<float>().data();
    const bool shared = batch == 1;
    auto work = [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t k = row / pixels;
        const int64_t x_row = shared ? row % pixels : row;
        Row<T>(x_data + x_row * channels, y_data + row * channels, gamma_data + k * channels,
               guide_data[row], scale_data, shift_data, channels);
      }
    };
    auto* workers = context->device()->tensorflow_cpu_worker_threads();
    // Cost per row in cycles: about one cycle per channel (memory-bound).
    ::tensorflow::Shard(workers->num_threads, workers->workers, objects * pixels, channels,
                        work);
  }
};

REGISTER_KERNEL_BUILDER(
    Name("OsmnModulate").Device(DEVICE_CPU).TypeConstraint<bfloat16>("T"),
    ModulateOp<bfloat16>);
REGISTER_KERNEL_BUILDER(
    Name("OsmnModulate").Device(DEVICE_CPU).TypeConstraint<float>("T"), ModulateOp<float>);

}  // namespace
}  // namespace osmn

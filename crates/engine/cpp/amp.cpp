// Mixed precision for fairtat's engine: libtorch's autocast with bfloat16 on the CPU or CUDA,
// and channels_last memory format. tch 0.24 reaches autocast only through the deprecated
// CUDA-only calls, whose dtype is float16, and has no memory formats; these few functions fill
// that gap (`crates/engine/src/models/precision.rs` is their only caller).
//
// Every function catches C++ exceptions: none may unwind into Rust.

#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>

namespace {
at::DeviceType device_type(bool cuda) { return cuda ? at::kCUDA : at::kCPU; }
}  // namespace

extern "C" {

// Enter a bfloat16 autocast region on the CPU (cuda = false) or CUDA. Returns the previous
// state, (enabled << 8) | dtype, for fairtat_amp_exit; -1 when libtorch refused.
int fairtat_amp_enter(bool cuda) {
  try {
    auto dev = device_type(cuda);
    int prev = (at::autocast::is_autocast_enabled(dev) ? 256 : 0) |
               static_cast<int>(at::autocast::get_autocast_dtype(dev));
    at::autocast::set_autocast_dtype(dev, at::kBFloat16);
    at::autocast::set_autocast_enabled(dev, true);
    at::autocast::increment_nesting();
    return prev;
  } catch (...) {
    return -1;
  }
}

// Leave the region fairtat_amp_enter opened, restoring the state it returned. The cache of
// weights cast to bfloat16 is freed when the outermost region ends (as torch.autocast does).
void fairtat_amp_exit(bool cuda, int prev) {
  try {
    auto dev = device_type(cuda);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(dev, (prev & 256) != 0);
    at::autocast::set_autocast_dtype(dev, static_cast<at::ScalarType>(prev & 255));
  } catch (...) {
  }
}

// Whether bfloat16 autocast is on for the device (for tests).
bool fairtat_amp_active(bool cuda) {
  try {
    auto dev = device_type(cuda);
    return at::autocast::is_autocast_enabled(dev) &&
           at::autocast::get_autocast_dtype(dev) == at::kBFloat16;
  } catch (...) {
    return false;
  }
}

// `t` in channels_last memory format (same values and shape), as a new tensor handle owned by
// the caller; nullptr when libtorch refused (e.g. not 4-dimensional). As `Tensor.to(memory_format=
// torch.channels_last)`, not `.contiguous(...)`: a tensor with a dimension of size 1 (a
// one-channel image or a conv weight [32, 1, 3, 3]) is contiguous in both formats, so
// `contiguous` keeps its NCHW strides, libtorch then suggests NCHW for it, and the convolution
// runs NCHW while the next one runs channels_last, with a layout conversion in between in the
// forward and the backward (the Fashion-MNIST SmallCNN's bf16 step ran at 0.6x PyTorch's).
// `to` gives strides that say channels_last.
at::Tensor* fairtat_channels_last(const at::Tensor* t) {
  try {
    return new at::Tensor(t->to(t->options(), false, false, at::MemoryFormat::ChannelsLast));
  } catch (...) {
    return nullptr;
  }
}

// Whether `t` is laid out channels_last (for tests).
bool fairtat_is_channels_last(const at::Tensor* t) {
  try {
    return t->is_contiguous(at::MemoryFormat::ChannelsLast);
  } catch (...) {
    return false;
  }
}

}  // extern "C"

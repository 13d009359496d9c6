//! `train.precision = "bf16"`: a model's forwards run under libtorch's bfloat16 autocast with
//! channels_last convolutions, over float32 weights (mixed precision as `torch.autocast(dtype=
//! torch.bfloat16)`; no loss scaling, which bfloat16's float32 exponent range makes unneeded).
//! Backward passes follow the dtypes their forward recorded, so training, its attacks and the
//! evaluation attacks all run in the precision of the model's forward. The logits come back as
//! float32, so losses, softmax and argmax read them as before.
//!
//! tch 0.24 has neither a dtype for autocast nor memory formats: `cpp/amp.cpp` (built by
//! `build.rs`) supplies both.

use std::ffi::c_void;

use tch::{Device, Tensor};

use fairtat_core::config::Precision;

extern "C" {
    fn fairtat_amp_enter(cuda: bool) -> i32;
    fn fairtat_amp_exit(cuda: bool, prev: i32);
    fn fairtat_amp_active(cuda: bool) -> bool;
    // Tensor handles (tch's `C_tensor`, a `torch::Tensor*`), untyped here.
    fn fairtat_channels_last(t: *const c_void) -> *mut c_void;
    fn fairtat_is_channels_last(t: *const c_void) -> bool;
}

/// Autocast is per device type; any other device runs in float32.
fn autocast_cuda(device: Device) -> Option<bool> {
    match device {
        Device::Cpu => Some(false),
        Device::Cuda(_) => Some(true),
        _ => None,
    }
}

/// A bfloat16 autocast region on one device type, left when dropped (restoring what was on).
struct Region {
    cuda: bool,
    prev: i32,
}

impl Region {
    fn enter(device: Device) -> Option<Region> {
        let cuda = autocast_cuda(device)?;
        // SAFETY: plain values in and out; the C++ side catches every exception.
        let prev = unsafe { fairtat_amp_enter(cuda) };
        (prev >= 0).then_some(Region { cuda, prev })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: as in `enter`; `prev` is what `fairtat_amp_enter` returned.
        unsafe { fairtat_amp_exit(self.cuda, self.prev) }
    }
}

/// A bf16 region held over several forwards of the same weights, left when dropped; nothing
/// for fp32. Autocast casts a float32 weight to bfloat16 once per outermost region and keeps
/// the cast until the region ends, so one region over a training step's attack and loss
/// forwards casts each weight once instead of once per forward (as `with torch.autocast():`
/// around the whole step does). It must end before the weights change: a cast kept across an
/// optimiser step would be stale.
#[must_use = "the region ends when the scope is dropped"]
pub struct Scope(#[allow(dead_code)] Option<Region>);

/// Open a [`Scope`] in `precision` on `device`.
pub fn scope(precision: Precision, device: Device) -> Scope {
    Scope(match precision {
        Precision::Fp32 => None,
        Precision::Bf16 => Region::enter(device),
    })
}

/// Run `f` (a forward pass) in `precision` on `device`.
pub fn run<T>(precision: Precision, device: Device, f: impl FnOnce() -> T) -> T {
    let _scope = scope(precision, device);
    f()
}

/// Whether bfloat16 autocast is on for `device` right now.
pub fn autocast_active(device: Device) -> bool {
    // SAFETY: a plain value in and out.
    autocast_cuda(device).is_some_and(|cuda| unsafe { fairtat_amp_active(cuda) })
}

/// `t` (4-dimensional) in channels_last memory format; `t` itself when libtorch refuses.
pub fn channels_last(t: &Tensor) -> Tensor {
    // SAFETY: `as_ptr` is a live tensor handle for the call; a non-null result is a new handle
    // that `from_ptr` takes ownership of.
    unsafe {
        let p = fairtat_channels_last(t.as_ptr().cast());
        if p.is_null() {
            t.shallow_clone()
        } else {
            Tensor::from_ptr(p.cast())
        }
    }
}

/// Whether `t` is laid out channels_last.
pub fn is_channels_last(t: &Tensor) -> bool {
    // SAFETY: `as_ptr` is a live tensor handle for the call.
    unsafe { fairtat_is_channels_last(t.as_ptr().cast()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn bf16_regions_cast_matmuls_and_restore_what_was_on() {
        let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
        assert!(!autocast_active(Device::Cpu));
        let kind = run(Precision::Bf16, Device::Cpu, || {
            assert!(autocast_active(Device::Cpu));
            // Nested regions (an attack inside a training step) keep it on.
            run(Precision::Bf16, Device::Cpu, || {
                assert!(autocast_active(Device::Cpu))
            });
            assert!(autocast_active(Device::Cpu), "the inner region left it on");
            a.matmul(&a).kind()
        });
        assert_eq!(kind, Kind::BFloat16);
        assert!(!autocast_active(Device::Cpu), "restored on leaving");
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
        let fp32 = run(Precision::Fp32, Device::Cpu, || a.matmul(&a).kind());
        assert_eq!(fp32, Kind::Float);
    }

    #[test]
    fn channels_last_keeps_values_and_shape() {
        let t = Tensor::arange(2 * 3 * 4 * 5, (Kind::Float, Device::Cpu)).view([2, 3, 4, 5]);
        assert!(!is_channels_last(&t));
        let cl = channels_last(&t);
        assert!(is_channels_last(&cl));
        assert_eq!(cl.size(), t.size());
        assert!(cl.equal(&t));
        // A one-channel weight is contiguous in both formats; it gets the strides that make
        // libtorch run its convolution channels_last (C innermost), not the NCHW ones.
        let w = Tensor::ones([32, 1, 3, 3], (Kind::Float, Device::Cpu));
        assert_eq!(w.stride(), vec![9, 9, 3, 1]);
        assert_eq!(channels_last(&w).stride(), vec![9, 1, 3, 1]);
        // Not 4-dimensional: returned as it is.
        let v = Tensor::ones([3], (Kind::Float, Device::Cpu));
        assert_eq!(channels_last(&v).size(), vec![3]);
    }
}

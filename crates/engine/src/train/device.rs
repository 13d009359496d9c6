//! Device selection: `auto` (first CUDA device when libtorch sees one, else CPU), `cpu`, `cuda:N`.

use fairtat_core::config::DeviceSpec;
use tch::Device;

use super::TrainError;

/// The libtorch device for `spec`; `cuda:N` must be one libtorch sees.
pub fn select(spec: DeviceSpec) -> Result<Device, TrainError> {
    match spec {
        DeviceSpec::Auto => Ok(Device::cuda_if_available()),
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(n) => {
            let available = tch::Cuda::device_count() as usize;
            if n >= available {
                return Err(TrainError::Device(format!(
                    "`{spec}` requested but libtorch sees {available} CUDA device(s)"
                )));
            }
            Ok(Device::Cuda(n))
        }
    }
}

/// A short human name for events and logs.
pub fn describe(d: Device) -> String {
    match d {
        Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}"),
    }
}

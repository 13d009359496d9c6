//! Device selection: `auto` (first CUDA device when libtorch sees one, else CPU), `cpu`, `cuda:N`.

use tch::Device;

use super::TrainError;

pub fn select(name: &str) -> Result<Device, TrainError> {
    match name {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        _ => {
            let n: usize = name
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| {
                    TrainError::Device(format!("`{name}`; allowed: auto, cpu, cuda:N"))
                })?;
            let available = tch::Cuda::device_count() as usize;
            if n >= available {
                return Err(TrainError::Device(format!(
                    "`{name}` requested but libtorch sees {available} CUDA device(s)"
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

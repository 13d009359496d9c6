//! Checkpoint files: safetensors with the PyTorch state_dict names of `tests/py/models.py`
//! and string metadata, so a checkpoint loads into the reference modules with
//! `load_state_dict(strict=True)` and `fairtat eval` can rebuild the model from the file alone.
//!
//! Writes go to a temporary file in the same directory that is renamed into place, so a crash
//! never leaves a truncated checkpoint under the final name.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{nn::VarStore, Device, Kind, Tensor};

use super::ModelError;

/// PyTorch's BatchNorm buffer that the project does not keep (momentum is fixed, so it is never
/// read); accepted and ignored on load.
const IGNORED_SUFFIX: &str = "num_batches_tracked";

/// Largest header `read_metadata` accepts (the safetensors crate's own limit).
const MAX_HEADER: u64 = 100_000_000;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn format_err(path: &Path, reason: impl ToString) -> ModelError {
    ModelError::Format {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Write `named` as f32 tensors (CPU, contiguous) with `metadata`.
pub(crate) fn save_named(
    named: &[(String, Tensor)],
    path: &Path,
    metadata: &BTreeMap<String, String>,
) -> Result<(), ModelError> {
    let mut owned: Vec<(&str, Vec<usize>, Vec<u8>)> = Vec::with_capacity(named.len());
    for (name, t) in named {
        let t = tch::no_grad(|| {
            t.f_to_device(Device::Cpu)?
                .f_to_kind(Kind::Float)?
                .f_contiguous()
        })?;
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * 4];
        t.f_copy_data_u8(&mut bytes, numel)?;
        let shape = t.size().iter().map(|&d| d as usize).collect();
        owned.push((name.as_str(), shape, bytes));
    }
    let mut views = Vec::with_capacity(owned.len());
    for (name, shape, bytes) in &owned {
        let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
            .map_err(|e| format_err(path, format!("tensor `{name}`: {e}")))?;
        views.push((*name, view));
    }
    let meta: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let tmp = tmp_path(path);
    let written = safetensors::serialize_to_file(views, &Some(meta), &tmp)
        .map_err(|e| match e {
            // A full disk is an I/O error ("No space left on device"), not a format problem.
            safetensors::SafeTensorError::IoError(io) => io_err(&tmp)(io),
            other => format_err(&tmp, other),
        })
        // fsync before the rename so that a power loss cannot leave a renamed but empty file.
        .and_then(|()| {
            fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io_err(&tmp))
        })
        .and_then(|()| fs::rename(&tmp, path).map_err(io_err(path)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    match dtype {
        Dtype::F32 => Some(Kind::Float),
        Dtype::F64 => Some(Kind::Double),
        Dtype::F16 => Some(Kind::Half),
        Dtype::BF16 => Some(Kind::BFloat16),
        _ => None,
    }
}

/// Load every variable of `vs` from `path` by name. All tensors are checked before any is
/// copied, so a failed load leaves the model unchanged.
pub(crate) fn load_into(vs: &VarStore, path: &Path) -> Result<(), ModelError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format_err(path, format!("{e:?}")))?;
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut file_names: Vec<&String> = st.names();
    file_names.sort();
    for name in file_names {
        if !name.ends_with(IGNORED_SUFFIX) && !vars.iter().any(|(n, _)| n == name) {
            return Err(ModelError::Unexpected {
                path: path.to_path_buf(),
                name: name.clone(),
            });
        }
    }
    let mut loaded = Vec::with_capacity(vars.len());
    for (name, var) in vars {
        let view = st.tensor(&name).map_err(|_| ModelError::Missing {
            path: path.to_path_buf(),
            name: name.clone(),
        })?;
        let expected = var.size();
        let found = view.shape().to_vec();
        if found.len() != expected.len()
            || found.iter().zip(&expected).any(|(&f, &e)| f as i64 != e)
        {
            return Err(ModelError::Shape {
                path: path.to_path_buf(),
                name,
                expected,
                found,
            });
        }
        let kind = kind_of(view.dtype()).ok_or_else(|| ModelError::Dtype {
            path: path.to_path_buf(),
            name: name.clone(),
            dtype: format!("{:?}", view.dtype()),
        })?;
        let t = Tensor::f_from_data_size(view.data(), &expected, kind)?.f_to_kind(var.kind())?;
        loaded.push((var, t));
    }
    tch::no_grad(|| -> Result<(), ModelError> {
        for (mut var, t) in loaded {
            var.f_copy_(&t)?;
        }
        Ok(())
    })
}

/// The string metadata of a checkpoint, read from the header only (a WRN checkpoint is ~190 MB).
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>, ModelError> {
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let file_len = f.metadata().map_err(io_err(path))?.len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n)
        .map_err(|_| format_err(path, "file shorter than the 8-byte header length"))?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER || n + 8 > file_len {
        return Err(format_err(
            path,
            format!("header length {n} does not fit a file of {file_len} bytes"),
        ));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(io_err(path))?;
    let json: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| format_err(path, format!("header is not JSON: {e}")))?;
    let obj = json
        .as_object()
        .ok_or_else(|| format_err(path, "header is not a JSON object"))?;
    let mut out = BTreeMap::new();
    if let Some(meta) = obj.get("__metadata__") {
        let meta = meta
            .as_object()
            .ok_or_else(|| format_err(path, "__metadata__ is not an object"))?;
        for (k, v) in meta {
            let v = v
                .as_str()
                .ok_or_else(|| format_err(path, format!("metadata `{k}` is not a string")))?;
            out.insert(k.clone(), v.to_string());
        }
    }
    Ok(out)
}

//! The one error type of the HTTP layer: 4xx answers carry their message (and the config key
//! for validation errors); 5xx answers are logged with their cause and answered generically.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::jobs::JobError;
use fairtat_core::config::ConfigError;
use fairtat_core::runs::safe_fs::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("unauthorized: a valid token is required for this request")]
    Unauthorized,
    /// A cross-site request or a foreign `Host` (see `server::guard`).
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large (limit {0} bytes)")]
    TooLarge(usize),
    #[error("{0}")]
    UnsupportedMedia(String),
    /// The queue is full (`--max-queued`).
    #[error("{0}")]
    TooMany(String),
    /// A limit of the server is reached for now (event streams): 503, retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The disk holding the runs folder is full: 507, nothing was created.
    #[error("{0}")]
    InsufficientStorage(String),
    /// A file of a run the server will not read as it stands (larger than it reads).
    #[error("{0}")]
    Unprocessable(String),
    /// A valid config that the cluster refuses (a time over the partition's limit, an
    /// unknown QoS): 400 with the key it is about.
    #[error("{0}")]
    Refused(ConfigError),
    /// A config that failed validation: 422 with the key it is about.
    #[error("{0}")]
    Invalid(#[from] ConfigError),
    /// Anything else: logged, answered with a generic 500.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Refused(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Invalid(_) | ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The config key a validation error names, for inline form errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::Invalid(e) | ApiError::Refused(e) => e.key(),
            _ => None,
        }
    }

    /// The message shown to the client (never internals).
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "internal server error (see the server log)".to_string(),
            other => other.to_string(),
        }
    }
}

impl ApiError {
    /// 507 for a full disk, with what is left of it (`free_space` of the runs folder) when
    /// known: a few bytes left tell the user it is really full, not a quota or a bug.
    pub fn disk_full(space: Option<(u64, u64)>) -> Self {
        let left = space.map_or(String::new(), |(free, total)| {
            format!("; {} free of {}", human_bytes(free), human_bytes(total))
        });
        ApiError::InsufficientStorage(format!(
            "the disk holding the runs folder is full (no space left on device{left}); nothing \
             was created: free some space (delete old runs or checkpoints) and try again"
        ))
    }
}

/// `512 B`, `3.5 MiB`, `20.0 GiB`.
fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    match u {
        0 => format!("{n} B"),
        _ => format!("{v:.1} {}", units[u]),
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull {
            return ApiError::disk_full(None);
        }
        ApiError::Internal(e.into())
    }
}

/// A file of a run refused by `safe_fs`: missing is 404, a link, FIFO, device or hard-linked
/// file 403, one too large 422, a full disk 507; the message names the file relative to the run.
impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Missing(name) => ApiError::NotFound(format!("file {name}")),
            Refusal::Link(_) | Refusal::NotRegular { .. } | Refusal::HardLinked { .. } => {
                ApiError::Forbidden(r.to_string())
            }
            Refusal::TooLarge { .. } => ApiError::Unprocessable(r.to_string()),
            Refusal::Io { err, .. } if err.kind() == std::io::ErrorKind::StorageFull => {
                ApiError::from(err)
            }
            Refusal::Io { name, err } => ApiError::Internal(anyhow::Error::new(err).context(name)),
        }
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Conflict(m) => ApiError::Conflict(m),
            JobError::NotFound(what) => ApiError::NotFound(format!("run {what}")),
            JobError::Invalid { field, message } => {
                ApiError::Invalid(ConfigError::invalid(field, message))
            }
            JobError::Io(e) => ApiError::Internal(e.into()),
            JobError::Refused(r) => ApiError::from(r),
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(cause = %self, "request failed");
        }
        let body = json!({ "error": self.public_message(), "field": self.field() });
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_507_saying_so_and_other_io_errors_stay_internal() {
        let full = ApiError::from(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert_eq!(full.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert!(full.public_message().contains("no space left"), "{full}");
        let other = ApiError::from(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let told = ApiError::disk_full(Some((3 * 1024 * 1024 / 2, 20 << 30)));
        assert_eq!(told.status(), StatusCode::INSUFFICIENT_STORAGE);
        let msg = told.public_message();
        assert!(
            msg.contains("(no space left on device; 1.5 MiB free of 20.0 GiB)"),
            "{msg}"
        );
        assert_eq!(human_bytes(512), "512 B");
    }
}

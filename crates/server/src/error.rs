//! The one error type of the HTTP layer: 4xx answers carry their message (and the config key
//! for validation errors); 5xx answers are logged with their cause and answered generically.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::jobs::JobError;
use fairtat_core::config::ConfigError;

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
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
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

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull {
            return ApiError::InsufficientStorage(
                "the disk holding the runs folder is full (no space left on device); nothing \
                 was created: free some space (delete old runs or checkpoints) and try again"
                    .into(),
            );
        }
        ApiError::Internal(e.into())
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
    }
}

//! Configuration errors: each names the key and, where there is a closed set, the allowed values.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum ConfigError {
    #[error("cannot read config {path}: {message}")]
    Io { path: String, message: String },
    #[error("config is not valid TOML: {0}")]
    Syntax(String),
    #[error("unknown config key {key}{hint}")]
    UnknownKey { key: String, hint: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("{key} = {value:?} is not allowed; allowed values: {allowed}")]
    NotAllowed {
        key: String,
        value: String,
        allowed: String,
    },
    #[error("--set {0:?}: expected key=value, e.g. train.epochs=5")]
    BadSet(String),
}

impl ConfigError {
    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            message: message.into(),
        }
    }

    pub fn not_allowed(key: &str, value: &str, allowed: &[&str]) -> Self {
        ConfigError::NotAllowed {
            key: key.to_string(),
            value: value.to_string(),
            allowed: allowed.join(", "),
        }
    }

    /// The config key this error is about, for inline form errors.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::NotAllowed { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The same error with where it happened appended (e.g. which grid combination).
    pub fn in_context(self, ctx: &str) -> Self {
        match self {
            ConfigError::Invalid { key, message } => ConfigError::Invalid {
                key,
                message: format!("{message} ({ctx})"),
            },
            ConfigError::NotAllowed {
                key,
                value,
                allowed,
            } => ConfigError::Invalid {
                key,
                message: format!("{value:?} is not allowed ({ctx}); allowed values: {allowed}"),
            },
            ConfigError::UnknownKey { key, hint } => ConfigError::UnknownKey {
                key,
                hint: format!("{hint} ({ctx})"),
            },
            other => other,
        }
    }
}

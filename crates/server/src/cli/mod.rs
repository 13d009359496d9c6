//! The dashboard's command line: `fairtat serve`'s options ([`ServeArgs`], [`executor`]), and
//! what every fairtat program shares: exit codes ([`Failure`]) and tracing set-up.

pub mod executor;
pub mod serve;
pub use serve::ServeArgs;

use fairtat_core::config::ConfigError;

/// Exit codes: 0 done, 1 failure, 2 bad input (config, flags, data), 130 cancelled.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        let error = e.into();
        let code = if error.downcast_ref::<ConfigError>().is_some() {
            2
        } else {
            1
        };
        Failure { code, error }
    }
}

/// Log to stderr at the level `FAIRTAT_LOG` names (default `info`); every program calls this.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FAIRTAT_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

//! The dashboard server.

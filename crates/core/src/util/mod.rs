//! Small helpers shared by several layers and free of tch and tokio.

mod named;
pub mod nonfinite;
pub mod rng;

pub use rng::Rng;

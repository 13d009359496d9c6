//! Training methods behind one trait.

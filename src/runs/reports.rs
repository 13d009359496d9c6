//! CSV reports.

//! Appends events to `events.jsonl`.

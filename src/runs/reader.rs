//! Reads and tails `events.jsonl`.

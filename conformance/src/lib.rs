//! ollmlx-conformance: cassettes, replay, diff.

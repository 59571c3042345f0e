//! ollmlx-engine (work in progress).

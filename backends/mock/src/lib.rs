//! ollmlx-mock: a scripted, deterministic backend for tests.

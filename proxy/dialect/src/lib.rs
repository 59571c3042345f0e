//! ollmlx-dialect: pure wire <-> infer translation (decode, normalize, stream, aggregate).

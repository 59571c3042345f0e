//! ollmlx-mlx (work in progress).

/* ollmlx's BLAS shim for MLX's Linux CPU backend (built by mlx-sys's build script).
 *
 * MLX computes every float32 matrix product with cblas_sgemm, including the one-row products
 * that make up a decode step (one token's activations times each weight matrix). OpenBLAS's
 * sgemm packs the whole weight matrix into a scratch buffer on every such call before
 * multiplying; its sgemv streams the matrix once. This library takes the place of the MLX
 * wheel's bundled BLAS (the file libmlx.so loads), links OpenBLAS, and sends one-row
 * row-major products to cblas_sgemv; every other call, and every other BLAS/LAPACK symbol,
 * goes to OpenBLAS unchanged. OLLMLX_BLAS_GEMV=0 in the environment turns the routing off
 * (for A/B measurements). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int,
                         const float *, int, float, float *, int);

void cblas_sgemv(int order, int trans, int m, int n, float alpha, const float *a, int lda,
                 const float *x, int incx, float beta, float *y, int incy);

static sgemm_fn next_sgemm(void) {
    /* Every thread stores the same pointer: the race is benign. */
    static sgemm_fn next;
    if (!next) next = (sgemm_fn)dlsym(RTLD_NEXT, "cblas_sgemm");
    return next;
}

/* 1 when one-row products go to sgemv, 0 when OLLMLX_BLAS_GEMV=0 turned that off. Also how
 * the tests find out that this library is the one answering cblas_sgemm. */
int ollmlx_blas_shim_gemv(void) {
    static int on = -1; /* benign race, as above */
    if (on < 0) {
        const char *v = getenv("OLLMLX_BLAS_GEMV");
        on = !(v && strcmp(v, "0") == 0);
    }
    return on;
}

void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c,
                 int ldc) {
    if (order == ROW_MAJOR && m == 1 && n > 0 && k > 0 && ollmlx_blas_shim_gemv()) {
        /* c[0, :] = alpha * op(a)[0, :] . op(b) + beta * c[0, :]; op(a) is 1 x k: contiguous
         * when a is not transposed, else one column of a k x lda matrix. */
        int inc_a = trans_a == NO_TRANS ? 1 : lda;
        if (beta == 0.0f) memset(c, 0, (size_t)n * sizeof(float)); /* c may hold garbage */
        if (trans_b == NO_TRANS) /* b is k x n: c = b^T a */
            cblas_sgemv(ROW_MAJOR, TRANS, k, n, alpha, b, ldb, a, inc_a, beta, c, 1);
        else /* b is stored n x k: c = b a */
            cblas_sgemv(ROW_MAJOR, NO_TRANS, n, k, alpha, b, ldb, a, inc_a, beta, c, 1);
        return;
    }
    next_sgemm()(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ollmlx's BLAS shim for MLX's Linux CPU backend (built by mlx-sys's build script).
 *
 * MLX computes every float32 matrix product with cblas_sgemm, including the one-row products
 * that make up a decode step (one token's activations times each weight matrix). OpenBLAS's
 * sgemm packs the whole weight matrix into a scratch buffer on every such call before
 * multiplying; its sgemv streams the matrix once. This library takes the place of the MLX
 * wheel's bundled BLAS (the file libmlx.so loads), links OpenBLAS, and sends one-row
 * row-major products to cblas_sgemv; every other call, and every other BLAS/LAPACK symbol,
 * goes to OpenBLAS unchanged. Products of 1 to 8 rows against a row-major matrix (decode
 * steps, batched or not, on ollmlx's transposed weights) go to a small kernel here that reads
 * the matrix once for all rows and computes every element the same way whatever the row count.
 * OLLMLX_BLAS_GEMV=0 in the environment turns both routes off, OLLMLX_BLAS_SMALL_M=0 only the
 * small kernel (for A/B measurements). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* Rows at most, and the column block each thread accumulates at a time (8 x 2048 floats of
 * accumulators: 64 KiB, in L2; narrower blocks made the 49k-column head slow, measured). */
enum { SMALL_M = 8, COL_BLOCK = 2048 };

struct qmat;

struct small_job {
    int m, k, j0, j1;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int lda, ldb, ldc;
    const struct qmat *q; /* the packed twin of b, or NULL */
};

/* A registered weight matrix b (k x n, row-major, ldb == n) whose values are exactly
 * s[g][j] * q[kk][j] + z[g][j] (g = kk / group, one multiply and one add, each rounded): the
 * small kernel reads q (one byte per value, or half a byte when every value fits in 4 bits)
 * and the per-group s and z instead of b's floats (a third to a fifth of the bytes) and
 * rebuilds b's exact values, so every product gives the same bits as
 * with b itself. Stored in chunks of QW columns, each chunk's k rows contiguous, so that a
 * kernel walking one chunk down all of k streams it in order; the last chunk is padded with
 * zeros. Registered by the model loader (ollmlx_qmat_register), which also removes the entry
 * before b's buffer can be freed. */
enum { QW = 8 };

struct qmat {
    const float *b;
    int k, n, group, chunks;
    int row_bytes; /* bytes per chunk row: QW, or QW / 2 when every value fits in 4 bits */
    uint8_t *q;    /* chunks x k x row_bytes */
    float *s, *z;  /* chunks x (k / group) x QW */
};

/* Value t (0..QW-1) of a chunk row. In the 4-bit layout byte i holds value i in its low
 * nibble and value i + QW / 2 in its high nibble. */
static inline int qmat_value(const struct qmat *m, const uint8_t *row, int t) {
    if (m->row_bytes == QW) return row[t];
    return (row[t % (QW / 2)] >> (4 * (t / (QW / 2)))) & 15;
}

/* Rebuild rows kk..kk+rows-1, columns j0..j0+w-1 of a packed matrix into out (rows x w). */
static void qmat_rows(const struct qmat *m, int kk, int rows, int j0, int w, float *out) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
    int groups = m->k / m->group;
    for (int r = 0; r < rows; r++) {
        int row = kk + r, g = row / m->group;
        float *o = out + (size_t)r * w;
        for (int j = 0; j < w; j++) {
            int c = (j0 + j) / QW, t = (j0 + j) % QW;
            float sv = m->s[((size_t)c * groups + g) * QW + t];
            float zv = m->z[((size_t)c * groups + g) * QW + t];
            const uint8_t *qrow = m->q + ((size_t)c * m->k + row) * m->row_bytes;
            float tv = sv * (float)qmat_value(m, qrow, t);
            o[j] = tv + zv;
        }
    }
}

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>
#define QMAT_AVX2 1
/* Columns [c0 * QW, c1 * QW) of a packed product on AVX2+FMA: per chunk, every row's
 * accumulator stays in a register while the chunk's k rows stream by, each rebuilt once
 * (multiply, then add: the exact float of b) and used by all m rows. Each element adds its k
 * terms one after another with FMA, as small_m_cols's AVX2 clone does, so the bits are those
 * of the float product. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
qmat_chunk(const int m, const struct qmat *q, int c, const float *a, int lda, float alpha,
           float beta, float *cm, int ldc, int n) {
#pragma clang fp contract(off)
    __m256 acc[SMALL_M];
    for (int r = 0; r < m; r++) acc[r] = _mm256_setzero_ps();
    int groups = q->k / q->group;
    const int rb = q->row_bytes;
    const uint8_t *qc = q->q + (size_t)c * q->k * rb;
    const __m256i shifts = _mm256_setr_epi32(0, 8, 16, 24, 4, 12, 20, 28);
    const __m256i low4 = _mm256_set1_epi32(15);
    const float *sc = q->s + (size_t)c * groups * QW, *zc = q->z + (size_t)c * groups * QW;
    for (int g = 0; g < groups; g++) {
        __m256 sv = _mm256_loadu_ps(sc + (size_t)g * QW), zv = _mm256_loadu_ps(zc + (size_t)g * QW);
        for (int kk = g * q->group; kk < (g + 1) * q->group; kk++) {
            __m256i qi;
            if (rb == QW) {
                qi = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(qc + (size_t)kk * QW)));
            } else {
                int word;
                memcpy(&word, qc + (size_t)kk * rb, sizeof word);
                qi = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(word), shifts), low4);
            }
            __m256 w = _mm256_add_ps(_mm256_mul_ps(sv, _mm256_cvtepi32_ps(qi)), zv);
            for (int r = 0; r < m; r++)
                acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + (size_t)r * lda + kk), w, acc[r]);
        }
    }
    int j0 = c * QW, width = n - j0 < QW ? n - j0 : QW;
    __m256 al = _mm256_set1_ps(alpha);
    for (int r = 0; r < m; r++) {
        float out[QW], *cr = cm + (size_t)r * ldc + j0;
        __m256 add = _mm256_setzero_ps();
        if (beta != 0.0f) {
            float old[QW] = {0};
            for (int t = 0; t < width; t++) old[t] = cr[t];
            add = _mm256_mul_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(old));
        }
        _mm256_storeu_ps(out, _mm256_fmadd_ps(al, acc[r], add));
        for (int t = 0; t < width; t++) cr[t] = out[t];
    }
}

__attribute__((target("avx2,fma"))) static void qmat_cols_avx2(const struct small_job *t) {
    int c0 = t->j0 / QW, c1 = (t->j1 + QW - 1) / QW;
    int n = t->j1; /* columns past j1 belong to other shares; j1 is a multiple of QW or n */
    for (int c = c0; c < c1; c++) {
        switch (t->m) {
#define QCASE(M) \
    case M: qmat_chunk(M, t->q, c, t->a, t->lda, t->alpha, t->beta, t->c, t->ldc, n); break;
            QCASE(1) QCASE(2) QCASE(3) QCASE(4) QCASE(5) QCASE(6) QCASE(7) QCASE(8)
#undef QCASE
        }
    }
}

static int qmat_avx2(void) {
    static int on = -1; /* benign race */
    if (on < 0) on = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return on;
}
#endif

/* c[r, j0..j1] = alpha * sum_k a[r, k] * b[k, j] + beta * c[r, j]: b is read once, row by
 * row, one column block at a time. The inner loop is element-wise (no reduction), so the
 * compiler vectorizes it without reassociating anything. */
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
/* AVX2+FMA when the CPU has them (chosen at load time), baseline x86-64 otherwise. */
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
static void small_m_cols(const struct small_job *t) {
#ifdef QMAT_AVX2
    if (t->q && qmat_avx2()) {
        qmat_cols_avx2(t);
        return;
    }
#endif
    float acc[SMALL_M][COL_BLOCK];
    float wq[4][COL_BLOCK]; /* rebuilt rows of a packed b */
    for (int jb = t->j0; jb < t->j1; jb += COL_BLOCK) {
        int w = t->j1 - jb < COL_BLOCK ? t->j1 - jb : COL_BLOCK;
        for (int r = 0; r < t->m; r++)
            for (int j = 0; j < w; j++) acc[r][j] = 0.0f;
        /* Four rows of b per pass over the accumulators (a quarter of the accumulator
         * loads and stores); each element still adds its k terms one after another, in
         * order, so the result is the same as one row at a time. */
        int kk = 0;
        for (; kk + 4 <= t->k; kk += 4) {
            const float *b0 = t->b + (size_t)kk * t->ldb + jb;
            const float *b1 = b0 + t->ldb, *b2 = b1 + t->ldb, *b3 = b2 + t->ldb;
            if (t->q) {
                qmat_rows(t->q, kk, 4, jb, w, &wq[0][0]);
                b0 = wq[0], b1 = wq[0] + w, b2 = wq[0] + 2 * w, b3 = wq[0] + 3 * w;
            }
            for (int r = 0; r < t->m; r++) {
                const float *ar_in = t->a + (size_t)r * t->lda + kk;
                float a0 = ar_in[0], a1 = ar_in[1], a2 = ar_in[2], a3 = ar_in[3];
                float *ar = acc[r];
                for (int j = 0; j < w; j++)
                    ar[j] = (((ar[j] + a0 * b0[j]) + a1 * b1[j]) + a2 * b2[j]) + a3 * b3[j];
            }
        }
        for (; kk < t->k; kk++) {
            const float *brow = t->b + (size_t)kk * t->ldb + jb;
            if (t->q) {
                qmat_rows(t->q, kk, 1, jb, w, &wq[0][0]);
                brow = wq[0];
            }
            for (int r = 0; r < t->m; r++) {
                float av = t->a[(size_t)r * t->lda + kk];
                float *ar = acc[r];
                for (int j = 0; j < w; j++) ar[j] = ar[j] + av * brow[j];
            }
        }
        for (int r = 0; r < t->m; r++) {
            float *cr = t->c + (size_t)r * t->ldc + jb;
            for (int j = 0; j < w; j++)
                cr[j] = t->alpha * acc[r][j] + (t->beta == 0.0f ? 0.0f : t->beta * cr[j]);
        }
    }
}

/* 0 when OLLMLX_BLAS_SMALL_M=0 turned the small kernel off. */
static int small_m_on(void) {
    static int on = -1; /* benign race */
    if (on < 0) {
        const char *v = getenv("OLLMLX_BLAS_SMALL_M");
        on = !(v && strcmp(v, "0") == 0);
    }
    return on;
}

/* Threads for the small kernel: OPENBLAS_NUM_THREADS when set (the BLAS threads the user
 * gave the process), else the online CPUs, at most 4. */
static int small_m_threads(void) {
    static int n = 0; /* benign race */
    if (n == 0) {
        const char *v = getenv("OPENBLAS_NUM_THREADS");
        int want = v ? atoi(v) : (int)sysconf(_SC_NPROCESSORS_ONLN);
        n = want < 1 ? 1 : want > 4 ? 4 : want;
    }
    return n;
}

/* Helper threads for the small kernel, started on first use and kept: a decode step makes
 * ~120 products, and starting and joining a thread for each cost more than the split saved on
 * the narrow ones. A helper spins briefly after each product (the next one usually follows
 * within tens of microseconds), then sleeps on a condition variable. One caller at a time
 * uses the helpers; a product that finds them busy (another thread's product) runs on its
 * caller alone. */
enum { MAX_THREADS = 4, SPIN_NS = 50000 };

struct pool {
    pthread_mutex_t use;  /* held by the caller whose product the helpers run */
    pthread_mutex_t lock; /* guards the sleeps below */
    pthread_cond_t wake, done;
    atomic_uint gen;      /* bumped once per product handed to the helpers */
    atomic_int remaining; /* helpers still working on the current product */
    int helpers;          /* helper threads running */
    struct small_job jobs[MAX_THREADS];
};

static struct pool pool = {.use = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER,
                           .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Wait until *word differs from seen: spin up to SPIN_NS, then sleep on cond. */
static unsigned wait_change(atomic_uint *word, unsigned seen, pthread_cond_t *cond) {
    unsigned v;
    uint64_t until = 0;
    for (unsigned i = 0;; i++) {
        if ((v = atomic_load_explicit(word, memory_order_acquire)) != seen) return v;
        if ((i & 63) == 0) {
            uint64_t t = now_ns();
            if (until == 0) until = t + SPIN_NS;
            else if (t > until) break;
        }
        cpu_relax();
    }
    pthread_mutex_lock(&pool.lock);
    while ((v = atomic_load_explicit(word, memory_order_acquire)) == seen)
        pthread_cond_wait(cond, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    return v;
}

static void *helper_main(void *arg) {
    /* arg: the helper's share index (low byte) and the generation current when it was
     * started (the rest); the product that started it is the next generation. */
    uintptr_t packed = (uintptr_t)arg;
    int id = (int)(packed & 0xff);
    unsigned seen = (unsigned)(packed >> 8);
    for (;;) {
        seen = wait_change(&pool.gen, seen, &pool.wake);
        small_m_cols(&pool.jobs[id]); /* every helper has a share: shares = helpers + 1 */
        if (atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    return NULL;
}

/* In a child forked from a process with helpers, none of them exist: start afresh. */
static void pool_after_fork(void) {
    pthread_mutex_init(&pool.use, NULL);
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.helpers = 0;
}

/* Start helpers until `want` run (called with pool.use held); returns how many run. */
static int pool_grow(int want) {
    static int registered;
    if (!registered) {
        pthread_atfork(NULL, NULL, pool_after_fork);
        registered = 1;
    }
    while (pool.helpers < want) {
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        uintptr_t packed = (uintptr_t)(pool.helpers + 1) |
                           (uintptr_t)atomic_load_explicit(&pool.gen, memory_order_relaxed) << 8;
        int rc = pthread_create(&tid, &attr, helper_main, (void *)packed);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        pool.helpers++;
    }
    return pool.helpers;
}

/* The product of m (1..8) rows of a with the row-major k x n matrix b, its columns split
 * between threads when the matrix is large enough to pay for them. Shares are whole multiples
 * of 16 columns (vector-aligned); each element's sum runs in the same order whatever the
 * split, so the result does not depend on the thread count. */
static void small_m(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc, const struct qmat *q) {
    int threads = small_m_threads();
    if ((size_t)n * (size_t)k < ((size_t)1 << 18) || n < 32) threads = 1;
    int helpers = 0;
    if (threads > 1 && pthread_mutex_trylock(&pool.use) == 0) {
        helpers = pool_grow(threads - 1);
        if (helpers == 0) pthread_mutex_unlock(&pool.use);
    }
    int shares = helpers + 1;
    int per = (n + shares - 1) / shares;
    per = (per + 15) / 16 * 16;
    struct small_job *jobs = helpers ? pool.jobs : (struct small_job[1]){0};
    for (int t = 0; t < shares; t++) {
        int j0 = t * per < n ? t * per : n, j1 = j0 + per < n ? j0 + per : n;
        jobs[t] = (struct small_job){m, k, j0, j1, alpha, beta, a, b, c, lda, ldb, ldc, q};
    }
    if (helpers == 0) {
        small_m_cols(&jobs[0]);
        return;
    }
    atomic_store_explicit(&pool.remaining, helpers, memory_order_relaxed);
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add_explicit(&pool.gen, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    if (jobs[0].j0 < jobs[0].j1) small_m_cols(&jobs[0]);
    /* Wait for the helpers: spin, then sleep until the last one signals. */
    uint64_t until = 0;
    for (unsigned i = 0; atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0; i++) {
        if ((i & 63) == 0) {
            uint64_t t = now_ns();
            if (until == 0) until = t + SPIN_NS;
            else if (t > until) {
                pthread_mutex_lock(&pool.lock);
                while (atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0)
                    pthread_cond_wait(&pool.done, &pool.lock);
                pthread_mutex_unlock(&pool.lock);
                break;
            }
        }
        cpu_relax();
    }
    pthread_mutex_unlock(&pool.use);
}

/* Whether every value of m rebuilds to b's bits (same arithmetic as qmat_rows). */
static int qmat_matches(const struct qmat *m) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
    int groups = m->k / m->group;
    for (int c = 0; c < m->chunks; c++) {
        int width = m->n - c * QW < QW ? m->n - c * QW : QW;
        for (int kk = 0; kk < m->k; kk++) {
            const uint8_t *qr = m->q + ((size_t)c * m->k + kk) * m->row_bytes;
            size_t g = (size_t)c * groups + kk / m->group;
            const float *sg = m->s + g * QW, *zg = m->z + g * QW;
            const float *br = m->b + (size_t)kk * m->n + (size_t)c * QW;
            for (int t = 0; t < width; t++) {
                float tv = sg[t] * (float)qmat_value(m, qr, t);
                float w = tv + zg[t];
                if (memcmp(&w, &br[t], sizeof w) != 0) return 0;
            }
        }
    }
    return 1;
}

/* The registry of packed twins: a small array searched by b's address, under a read-write
 * lock that a product holds while it reads a twin (so an entry is never freed under it). */
static pthread_rwlock_t qlock = PTHREAD_RWLOCK_INITIALIZER;
static struct qmat *qtab;
static atomic_int qcount; /* read without the lock only to skip the lookup when empty */
static int qcap;

/* 0 when OLLMLX_BLAS_PACKED=0 turned the packed twins off (for A/B runs). */
static int packed_on(void) {
    static int on = -1; /* benign race */
    if (on < 0) {
        const char *v = getenv("OLLMLX_BLAS_PACKED");
        on = !(v && strcmp(v, "0") == 0);
    }
    return on;
}

static void qmat_free(struct qmat *m) {
    free(m->q);
    free(m->s);
    free(m->z);
}

/* Register b (k x n, row-major) with its packed form in the orientation it was quantized in:
 * q n x k bytes (row j holds column j of b), s and z n x (k / group). Copied here into the
 * chunked layout; every value is rebuilt and compared with b bit for bit first. Returns 1 when
 * registered, 0 when some value differs (nothing registered), -1 on bad arguments or no
 * memory. Registering the same b again replaces the entry. */
int ollmlx_qmat_register(const float *b, int k, int n, int group, const uint8_t *q,
                         const float *s, const float *z) {
#if !defined(__clang__)
    /* The rebuild must not be fused into one rounding (clang's `fp contract(off)` pragma
     * guarantees it; other compilers may contract it in the AVX2 code): no twins. */
    (void)b, (void)k, (void)n, (void)group, (void)q, (void)s, (void)z;
    return -1;
#endif
    if (!b || !q || !s || !z || k <= 0 || n <= 0 || group <= 0 || k % group != 0) return -1;
    if (!packed_on()) return -1;
    int chunks = (n + QW - 1) / QW, groups = k / group;
    uint8_t qmax = 0;
    for (size_t i = 0; i < (size_t)k * n; i++) qmax = q[i] > qmax ? q[i] : qmax;
    int rb = qmax < 16 ? QW / 2 : QW;
    struct qmat m = {b, k, n, group, chunks, rb, NULL, NULL, NULL};
    size_t nq = (size_t)chunks * k * rb, ns = (size_t)chunks * groups * QW;
    m.q = calloc(nq, 1);
    m.s = calloc(ns, sizeof(float));
    m.z = calloc(ns, sizeof(float));
    if (!m.q || !m.s || !m.z) {
        qmat_free(&m);
        return -1;
    }
    for (int j = 0; j < n; j++) {
        int c = j / QW, t = j % QW;
        const uint8_t *qj = q + (size_t)j * k;
        uint8_t *qc = m.q + (size_t)c * k * rb;
        if (rb == QW)
            for (int kk = 0; kk < k; kk++) qc[(size_t)kk * QW + t] = qj[kk];
        else
            for (int kk = 0; kk < k; kk++)
                qc[(size_t)kk * rb + t % rb] |= (uint8_t)(qj[kk] << (4 * (t / rb)));
        for (int g = 0; g < groups; g++) {
            size_t at = ((size_t)c * groups + g) * QW + t;
            m.s[at] = s[(size_t)j * groups + g];
            m.z[at] = z[(size_t)j * groups + g];
        }
    }
    if (!qmat_matches(&m)) {
        qmat_free(&m);
        return 0;
    }
    pthread_rwlock_wrlock(&qlock);
    int at = qcount;
    for (int i = 0; i < qcount; i++)
        if (qtab[i].b == b) at = i;
    if (at == qcount && qcount == qcap) {
        int cap = qcap ? qcap * 2 : 64;
        struct qmat *grown = realloc(qtab, (size_t)cap * sizeof(struct qmat));
        if (!grown) {
            pthread_rwlock_unlock(&qlock);
            qmat_free(&m);
            return -1;
        }
        qtab = grown;
        qcap = cap;
    }
    if (at < qcount) qmat_free(&qtab[at]);
    else atomic_fetch_add(&qcount, 1);
    qtab[at] = m;
    pthread_rwlock_unlock(&qlock);
    return 1;
}

/* Forget b's twin (before b's buffer is freed); waits for products reading it. */
void ollmlx_qmat_unregister(const float *b) {
    pthread_rwlock_wrlock(&qlock);
    for (int i = 0; i < qcount; i++)
        if (qtab[i].b == b) {
            qmat_free(&qtab[i]);
            qtab[i] = qtab[atomic_fetch_sub(&qcount, 1) - 1];
            break;
        }
    pthread_rwlock_unlock(&qlock);
}

/* Registered twins (for tests and logs). */
int ollmlx_qmat_count(void) {
    pthread_rwlock_rdlock(&qlock);
    int n = qcount;
    pthread_rwlock_unlock(&qlock);
    return n;
}

/* The twin of b for a k x n row-major product, or NULL; the caller holds qlock for reading. */
static const struct qmat *qmat_find(const float *b, int k, int n, int ldb) {
    for (int i = 0; i < qcount; i++)
        if (qtab[i].b == b)
            return qtab[i].k == k && qtab[i].n == n && ldb == n ? &qtab[i] : NULL;
    return NULL;
}

void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c,
                 int ldc) {
    int routed = order == ROW_MAJOR && n > 0 && k > 0 && ollmlx_blas_shim_gemv();
    /* 1-8 rows against a row-major matrix: the small kernel, for one row as for eight, so a
     * row's result does not depend on how many rows it was computed with (a batched decode
     * step gives every row exactly what it gets alone). */
    if (routed && m >= 1 && m <= SMALL_M && trans_a == NO_TRANS && trans_b == NO_TRANS &&
        small_m_on()) {
        if (atomic_load_explicit(&qcount, memory_order_relaxed) > 0 && packed_on()) {
            pthread_rwlock_rdlock(&qlock);
            small_m(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, qmat_find(b, k, n, ldb));
            pthread_rwlock_unlock(&qlock);
        } else {
            small_m(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
        }
        return;
    }
    if (routed && m == 1) {
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

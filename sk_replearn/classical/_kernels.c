/*
 * Fused passes over the rows of X for the classical estimators.
 *
 * PCATransformer's covariance solver:
 * shift_sum(x, shift, out, sums, n_features, is_double) reads each value of
 * a block of rows once: it writes x - shift into out (the dtype of x) and
 * adds x, converted to double, into sums. NumPy needs two passes for this
 * (a float64 copy summed by BLAS, then the subtraction), and the block is
 * read from memory for each: measured on one core for 200k x 256 float32,
 * the fused loop takes 16-19 ms where the two NumPy passes take 35-40 ms,
 * next to 175 ms for the Gram matrix itself.
 *
 * The sums are exact in the sense the NumPy path is: each value is added in
 * double precision, row after row, into its column's running sum.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* One build that uses AVX2 where the CPU has it (GCC on x86-64 Linux). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__linux__)
#define MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define MULTIVERSION
#endif
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif
#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch((p), 0, 3)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* out = x - shift and sums += x, row after row, for one element type. */
#define DEFINE_SHIFT_SUM(name, type)                                        \
    MULTIVERSION                                                            \
    static void                                                             \
    name(const type *x, Py_ssize_t rows, Py_ssize_t d, const type *shift,   \
         type *out, double *sums)                                           \
    {                                                                       \
        for (Py_ssize_t r = 0; r < rows; r++) {                             \
            const type *xr = x + r * d;                                     \
            type *o = out + r * d;                                          \
            for (Py_ssize_t j = 0; j < d; j++) {                            \
                type v = xr[j];                                             \
                o[j] = v - shift[j];                                        \
                sums[j] += (double)v;                                       \
            }                                                               \
        }                                                                   \
    }

DEFINE_SHIFT_SUM(shift_sum_f32, float)
DEFINE_SHIFT_SUM(shift_sum_f64, double)

PyDoc_STRVAR(shift_sum_doc,
"shift_sum(x, shift, out, sums, n_features, is_double)\n"
"--\n\n"
"out = x - shift and sums += x (in double), in one pass over x.\n\n"
"x is a C-contiguous block of rows (n_features values each) of float32,\n"
"or float64 when is_double; shift (n_features values) and out (as many\n"
"values as x, writable) have the same dtype; sums is n_features writable\n"
"float64 values. Every buffer is C-contiguous. The caller checks dtypes.");

static PyObject *
shift_sum(PyObject *self, PyObject *args)
{
    Py_buffer x, shift, out, sums;
    Py_ssize_t d;
    int is_double;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "y*y*w*w*np:shift_sum", &x, &shift, &out,
                          &sums, &d, &is_double))
        return NULL;
    Py_ssize_t item = is_double ? (Py_ssize_t)sizeof(double)
                                : (Py_ssize_t)sizeof(float);
    if (d <= 0 || x.len % (d * item) != 0 || shift.len != d * item ||
        out.len != x.len || sums.len != d * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError,
                        "shift_sum: buffer sizes do not match n_features");
        goto done;
    }
    Py_ssize_t rows = x.len / (d * item);
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        shift_sum_f64((const double *)x.buf, rows, d,
                      (const double *)shift.buf, (double *)out.buf,
                      (double *)sums.buf);
    else
        shift_sum_f32((const float *)x.buf, rows, d, (const float *)shift.buf,
                      (float *)out.buf, (double *)sums.buf);
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&x);
    PyBuffer_Release(&shift);
    PyBuffer_Release(&out);
    PyBuffer_Release(&sums);
    return result;
}


/*
 * KMeansTransformer's Lloyd pass (Hamerly's bounds):
 *
 * hamerly_pass(...) relabels a block of rows, keeps each row's upper bound
 * (distance to its center) and lower bound (to the nearest other center),
 * moving them by the centers' last moves as it reads them, skips the rows
 * whose bounds prove the label cannot change, and adds the
 * rows (or, incrementally, only the rows that changed cluster) to float64
 * per-cluster sums. Each value of X is read once a pass, and the distances
 * of a row are never written to memory: torch's version of the same pass
 * (the fallback, in _hamerly.py) runs about ten tensor operations over
 * (rows, k) blocks plus an index_add_ over (rows, d), each a trip through
 * memory. The distances are ||c||^2 - 2 x.c in float32, as the fallback's
 * (||x||^2 is added for the bounds only); the first minimum wins ties.
 */
#define TILE_ROWS 8

/* Rows at a time against 16 or 24 centers (8 or 12 accumulators) */
#define WIDE_ROWS (TILE_ROWS / 2)

/* The rows of the next tile, [next, end), asked for from memory a few cache
 * lines at a time (per lines a request) between the blocks of arithmetic of
 * this tile, so that reading x overlaps the multiply-adds. Without it a
 * shifted tile is read in one burst that the arithmetic waits for (MNIST,
 * 20k x 784, k = 100, one thread: 49 ms a pass where the unshifted rows
 * took 35; 34 ms with these requests). */
typedef struct {
    const char *next, *end;
    Py_ssize_t per;
} ahead;

#define CACHE_LINE 64

/* Request the next `lines` cache lines of a (all that are left if lines < 0;
 * nothing if a is NULL). A prefetch never faults. */
static ALWAYS_INLINE void
fetch_ahead(ahead *a, Py_ssize_t lines)
{
    if (!a)
        return;
    for (; lines != 0 && a->next < a->end; lines--, a->next += CACHE_LINE)
        PREFETCH(a->next);
}

/* Nearest center (first minimum), its distance and the second smallest
 * distance of r <= TILE_ROWS rows, without ||x||^2 (portable C). rows has
 * TILE_ROWS pointers, c_t is (d, kp) and c_sq has kp values, +inf beyond
 * the k centers; next (or NULL) is the next tile, requested meanwhile. */
static void
nearest_plain(const float *const *rows, Py_ssize_t r, Py_ssize_t d,
              const float *c_t, Py_ssize_t kp, const float *c_sq,
              int64_t *arg, float *best, float *second, ahead *next)
{
    if (next)
        next->per = (next->end - next->next) / (CACHE_LINE * TILE_ROWS) + 1;
    for (Py_ssize_t q = 0; q < r; q++) {
        fetch_ahead(next, next ? next->per : 0);
        best[q] = INFINITY;
        second[q] = INFINITY;
        arg[q] = 0;
        for (Py_ssize_t j = 0; j < kp; j++) {
            float dot = 0.0f;
            for (Py_ssize_t t = 0; t < d; t++)
                dot += rows[q][t] * c_t[t * kp + j];
            float v = c_sq[j] - 2.0f * dot;
            if (v < best[q]) {  /* strictly: an equal later center loses */
                second[q] = best[q];
                best[q] = v;
                arg[q] = j;
            } else if (v < second[q]) {
                second[q] = v;
            }
        }
    }
    fetch_ahead(next, -1);
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX2_BUILD 1
#define AVX2 __attribute__((target("avx2,fma")))

/* v's minimum in every lane. */
static ALWAYS_INLINE AVX2 __m256
hmin_ps(__m256 v)
{
    v = _mm256_min_ps(v, _mm256_permute2f128_ps(v, v, 1));
    v = _mm256_min_ps(v, _mm256_shuffle_ps(v, v, 0x4E));
    return _mm256_min_ps(v, _mm256_shuffle_ps(v, v, 0xB1));
}

static ALWAYS_INLINE AVX2 __m256i
hmin_epi32(__m256i v)
{
    v = _mm256_min_epi32(v, _mm256_permute2x128_si256(v, v, 1));
    v = _mm256_min_epi32(v, _mm256_shuffle_epi32(v, 0x4E));
    return _mm256_min_epi32(v, _mm256_shuffle_epi32(v, 0xB1));
}

/* Fold the dot products acc of one row with the centers j0 .. j0 + 7 into
 * the lanes' smallest (b1) and second smallest (b2) distances and the
 * index (at) of the smallest. */
static ALWAYS_INLINE AVX2 void
keep_two(__m256 *b1, __m256 *b2, __m256i *at, __m256 acc, const float *c_sq,
         Py_ssize_t j0)
{
    /* c_sq - 2 acc: 2 acc is exact, so one rounding, as unfused */
    __m256 v = _mm256_fnmadd_ps(_mm256_set1_ps(2.0f), acc,
                                _mm256_loadu_ps(c_sq + j0));
    __m256 lt = _mm256_cmp_ps(v, *b1, _CMP_LT_OQ);
    /* v < b1: b2 = b1; else b2 = min(b2, v). A NaN v changes nothing, as in
     * nearest_plain: min_ps and max_ps return their second operand when one
     * is NaN, so b1 and b2 stay numbers and at an index of a real center
     * (a NaN in b1 would leave no lane equal to the minimum, and the label
     * INT32_MAX). */
    *b2 = _mm256_min_ps(_mm256_max_ps(*b1, v), *b2);
    *b1 = _mm256_min_ps(v, *b1);
    __m256i j = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                 _mm256_set1_epi32((int)j0));
    *at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(*at),
                                               _mm256_castsi256_ps(j), lt));
}

/* Values of a row the wide loops read per block of the centers: a block
 * of 24 centers' 128 values (12 KiB) stays in the level-1 cache while both
 * halves of a tile read it, where a whole MNIST row's (784 values, 73 KiB)
 * was read from level 2 twice. */
#define D_BLOCK 128

/* s[v][q] += the dot products over t0 <= t < t1 of the tile's row h + q
 * (q < WIDE_ROWS) with the eight centers whose values are at
 * ct[t * kp + 8 v], for v < nv <= 3: 4 nv independent multiply-add chains,
 * nv + 4 loads for 4 nv multiply-adds. */
static ALWAYS_INLINE AVX2 void
add_dots(const float *const *rows, int h, Py_ssize_t t0, Py_ssize_t t1,
         const float *ct, Py_ssize_t kp, int nv, __m256 s[][WIDE_ROWS])
{
    for (Py_ssize_t t = t0; t < t1; t++) {
        __m256 c[3];
        for (int v = 0; v < nv; v++)
            c[v] = _mm256_loadu_ps(ct + t * kp + 8 * v);
        for (int q = 0; q < WIDE_ROWS; q++) {
            __m256 xv = _mm256_broadcast_ss(rows[h + q] + t);
            for (int v = 0; v < nv; v++)
                s[v][q] = _mm256_fmadd_ps(xv, c[v], s[v][q]);
        }
    }
}

/* The tile's distances to the 8 nv centers j0 .. j0 + 8 nv - 1 (nv <= 3),
 * folded into b1, b2 and at (see keep_two). Rows longer than D_BLOCK are
 * read a block at a time by both halves of the tile, the sums kept in
 * memory between blocks; shorter ones keep them in registers. */
static ALWAYS_INLINE AVX2 void
wide_centers(const float *const *rows, Py_ssize_t d, const float *c_t,
             Py_ssize_t kp, const float *c_sq, Py_ssize_t j0, int nv,
             __m256 *b1, __m256 *b2, __m256i *at, ahead *next)
{
    const float *ct = c_t + j0;
    __m256 s[3][WIDE_ROWS];
    if (d <= D_BLOCK) {
        for (int h = 0; h < TILE_ROWS; h += WIDE_ROWS) {
            for (int v = 0; v < nv; v++)
                for (int q = 0; q < WIDE_ROWS; q++)
                    s[v][q] = _mm256_setzero_ps();
            fetch_ahead(next, next ? next->per : 0);
            add_dots(rows, h, 0, d, ct, kp, nv, s);
            for (int q = 0; q < WIDE_ROWS; q++)
                for (int v = 0; v < nv; v++)
                    keep_two(&b1[h + q], &b2[h + q], &at[h + q], s[v][q], c_sq,
                             j0 + 8 * v);
        }
        return;
    }
    __m256 acc[3][TILE_ROWS];
    for (int v = 0; v < nv; v++)
        for (int q = 0; q < TILE_ROWS; q++)
            acc[v][q] = _mm256_setzero_ps();
    for (Py_ssize_t t0 = 0; t0 < d; t0 += D_BLOCK) {
        Py_ssize_t t1 = t0 + D_BLOCK < d ? t0 + D_BLOCK : d;
        for (int h = 0; h < TILE_ROWS; h += WIDE_ROWS) {
            for (int v = 0; v < nv; v++)
                for (int q = 0; q < WIDE_ROWS; q++)
                    s[v][q] = acc[v][h + q];
            fetch_ahead(next, next ? next->per : 0);
            add_dots(rows, h, t0, t1, ct, kp, nv, s);
            for (int v = 0; v < nv; v++)
                for (int q = 0; q < WIDE_ROWS; q++)
                    acc[v][h + q] = s[v][q];
        }
    }
    for (int q = 0; q < TILE_ROWS; q++)
        for (int v = 0; v < nv; v++)
            keep_two(&b1[q], &b2[q], &at[q], acc[v][q], c_sq, j0 + 8 * v);
}

/* nearest_plain with AVX2 and FMA: four rows at a time against 24 or 16
 * centers (wide_centers), then eight rows against the last eight, keep 12
 * or 8 independent multiply-add chains in flight, and each lane l of a row
 * keeps, without branches, the smallest and second smallest distance of
 * the centers l, l + 8, l + 16, ... (the first of equal ones); the lanes
 * are merged at the end. */
static AVX2 void
nearest_avx2(const float *const *rows, Py_ssize_t r, Py_ssize_t d,
             const float *c_t, Py_ssize_t kp, const float *c_sq,
             int64_t *arg, float *best, float *second, ahead *next)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 b1[TILE_ROWS], b2[TILE_ROWS];
    __m256i at[TILE_ROWS];
    for (int q = 0; q < TILE_ROWS; q++) {
        b1[q] = _mm256_set1_ps(INFINITY);
        b2[q] = b1[q];
        at[q] = lane;
    }
    if (next) {  /* spread the requests over the blocks of arithmetic */
        Py_ssize_t wide = kp / 24 + (kp % 24) / 16, tail = (kp % 24 % 16) / 8;
        Py_ssize_t blocks = d <= D_BLOCK ? 1 : (d + D_BLOCK - 1) / D_BLOCK;
        Py_ssize_t calls = wide * blocks * (TILE_ROWS / WIDE_ROWS) + tail;
        next->per = (next->end - next->next) / (CACHE_LINE * calls) + 1;
    }
    Py_ssize_t j0 = 0;
    for (; j0 + 24 <= kp; j0 += 24)
        wide_centers(rows, d, c_t, kp, c_sq, j0, 3, b1, b2, at, next);
    for (; j0 + 16 <= kp; j0 += 16)
        wide_centers(rows, d, c_t, kp, c_sq, j0, 2, b1, b2, at, next);
    for (; j0 < kp; j0 += 8) {
        fetch_ahead(next, next ? next->per : 0);
        __m256 acc[TILE_ROWS];
        for (int q = 0; q < TILE_ROWS; q++)
            acc[q] = _mm256_setzero_ps();
        const float *ct = c_t + j0;
        for (Py_ssize_t t = 0; t < d; t++) {
            __m256 cv = _mm256_loadu_ps(ct + t * kp);
            for (int q = 0; q < TILE_ROWS; q++)
                acc[q] = _mm256_fmadd_ps(_mm256_broadcast_ss(rows[q] + t), cv,
                                         acc[q]);
        }
        for (int q = 0; q < TILE_ROWS; q++)
            keep_two(&b1[q], &b2[q], &at[q], acc[q], c_sq, j0);
    }
    fetch_ahead(next, -1);
    /* Per row: the smallest distance, the lowest center index that has it,
     * and the smallest of the others (the winning lane's second smallest,
     * or another lane's smallest). */
    const __m256i none = _mm256_set1_epi32(INT32_MAX);
    for (Py_ssize_t q = 0; q < r; q++) {
        __m256 m = hmin_ps(b1[q]);
        __m256 is_min = _mm256_cmp_ps(b1[q], m, _CMP_EQ_OQ);
        __m256i idx = hmin_epi32(_mm256_castps_si256(_mm256_blendv_ps(
            _mm256_castsi256_ps(none), _mm256_castsi256_ps(at[q]), is_min)));
        __m256 won = _mm256_castsi256_ps(_mm256_cmpeq_epi32(at[q], idx));
        __m256 rest = hmin_ps(_mm256_blendv_ps(b1[q], b2[q], won));
        best[q] = _mm256_cvtss_f32(m);
        second[q] = _mm256_cvtss_f32(rest);
        arg[q] = _mm256_cvtsi256_si32(idx);
    }
}
#endif

/* delta += scale * x (in double), d values. */
static ALWAYS_INLINE void
add_row(double *delta, const float *x, Py_ssize_t d, double scale)
{
    for (Py_ssize_t t = 0; t < d; t++)
        delta[t] += scale * (double)x[t];
}

typedef struct {
    const float *x, *x_sq, *c_t, *c_sq, *half, *w, *moves;
    int64_t *labels;
    float *upper, *lower;
    double *delta;
    Py_ssize_t d, kp;
    float slack, max_move;
    int all_rows, incremental;
} lloyd_block;

/* Sample weight of row i (1 without weights). */
static ALWAYS_INLINE double
row_weight(const lloyd_block *b, Py_ssize_t i)
{
    return b->w ? (double)b->w[i] : 1.0;
}

typedef void (*nearest_fn)(const float *const *, Py_ssize_t, Py_ssize_t,
                           const float *, Py_ssize_t, const float *, int64_t *,
                           float *, float *, ahead *);

/* Settle the r pending rows idx[0..r): labels, bounds and sums. */
static ALWAYS_INLINE Py_ssize_t
settle(const lloyd_block *b, const Py_ssize_t *idx, Py_ssize_t r,
       nearest_fn nearest)
{
    const float *rows[TILE_ROWS];
    int64_t arg[TILE_ROWS];
    float best[TILE_ROWS], second[TILE_ROWS];
    Py_ssize_t changed = 0, d = b->d;
    for (Py_ssize_t q = 0; q < TILE_ROWS; q++)  /* spare lanes repeat row 0 */
        rows[q] = b->x + idx[q < r ? q : 0] * d;
    nearest(rows, r, d, b->c_t, b->kp, b->c_sq, arg, best, second, NULL);
    for (Py_ssize_t q = 0; q < r; q++) {
        Py_ssize_t i = idx[q];
        float xs = b->x_sq[i];
        /* x^2 + c^2 - 2 x.c, rounded below 0 when the row is a center */
        float up = best[q] + xs, low = second[q] + xs;
        b->upper[i] = sqrtf(up > 0.0f ? up : 0.0f);
        b->lower[i] = sqrtf(low > 0.0f ? low : 0.0f);
        int64_t old = b->labels[i], new = arg[q];
        double wi = row_weight(b, i);
        if (new != old) {
            changed++;
            if (b->incremental) {
                add_row(b->delta + new * d, rows[q], d, wi);
                add_row(b->delta + old * d, rows[q], d, -wi);
            }
        }
        if (!b->incremental)
            add_row(b->delta + new * d, rows[q], d, wi);
        b->labels[i] = new;
    }
    return changed;
}

/* Rows are screened SCREEN at a time: the indices of those the bounds
 * cannot settle are listed without branches (a branch a row mispredicts
 * when, as on data without cluster structure, most rows but not all need
 * their distances), then settled TILE_ROWS at a time. The listed rows are
 * not contiguous, so the memory's prefetcher cannot guess them: each tile
 * asks for the rows PREFETCH_TILES tiles ahead (on 200k x 40 float32
 * rows, 8 centers, half the rows listed: 4.8 ms a pass against 7.9). */
#define SCREEN 512
#define PREFETCH_TILES 2

/* Ask for a row's first cache lines (the prefetcher follows the rest). */
static ALWAYS_INLINE void
prefetch_row(const float *row, Py_ssize_t d)
{
#if defined(__GNUC__)
    const char *p = (const char *)row;
    Py_ssize_t bytes = d * (Py_ssize_t)sizeof(float);
    if (bytes > 1024)
        bytes = 1024;
    for (Py_ssize_t o = 0; o < bytes; o += 64)
        __builtin_prefetch(p + o, 0, 3);
#else
    (void)row;
    (void)d;
#endif
}

/* Screen row i: move its bounds by the centers' moves, list it in idx[m]
 * if the bounds cannot settle it (returns m + 1, else m), and otherwise
 * sum it, unless incremental, as its label stands. */
static ALWAYS_INLINE Py_ssize_t
screen_row(const lloyd_block *b, Py_ssize_t i, Py_ssize_t *idx, Py_ssize_t m)
{
    int64_t lab = b->labels[i];
    float up = b->upper[i], low = b->lower[i];
    if (b->moves) {  /* the centers moved since the bounds */
        up += b->moves[lab];
        low -= b->max_move;
        b->upper[i] = up;
        b->lower[i] = low;
    }
    float half = b->half[lab];
    float bound = low > half ? low : half;
    int need = up + b->slack >= bound;
    idx[m] = i;
    if (!need && !b->incremental)
        add_row(b->delta + lab * b->d, b->x + i * b->d, b->d, row_weight(b, i));
    return m + need;
}

/* Screen the rows i0 .. end - 1 into idx; the number listed. */
typedef Py_ssize_t (*screen_fn)(const lloyd_block *, Py_ssize_t, Py_ssize_t,
                                Py_ssize_t *);

static Py_ssize_t
screen_plain(const lloyd_block *b, Py_ssize_t i0, Py_ssize_t end,
             Py_ssize_t *idx)
{
    Py_ssize_t m = 0;
    for (Py_ssize_t i = i0; i < end; i++)
        m = screen_row(b, i, idx, m);
    return m;
}

#ifdef HAVE_AVX2_BUILD
/* COMPRESS[mask]: the lanes set in mask, in order (then zeros). */
static int32_t COMPRESS[256][8];

static void
fill_compress(void)
{
    for (int mask = 0; mask < 256; mask++) {
        int m = 0;
        for (int lane = 0; lane < 8; lane++)
            if (mask >> lane & 1)
                COMPRESS[mask][m++] = lane;
        while (m < 8)
            COMPRESS[mask][m++] = 0;
    }
}

/* screen_plain eight rows at a time: the same float operations, the
 * rows to settle listed without a branch (COMPRESS). On 200k x 40 rows and
 * 8 centers, a pass took 4.2 ms against 5.8 screening row by row. */
static AVX2 Py_ssize_t
screen_avx2(const lloyd_block *b, Py_ssize_t i0, Py_ssize_t end,
            Py_ssize_t *idx)
{
    Py_ssize_t m = 0, i = i0;
    const __m256 slack = _mm256_set1_ps(b->slack);
    const __m256 max_move = _mm256_set1_ps(b->max_move);
    for (; i + 8 <= end; i += 8) {
        const __m256i *lab = (const __m256i *)(b->labels + i);
        __m256i l0 = _mm256_loadu_si256(lab), l1 = _mm256_loadu_si256(lab + 1);
        __m256 up = _mm256_loadu_ps(b->upper + i);
        __m256 low = _mm256_loadu_ps(b->lower + i);
        if (b->moves) {
            __m256 mv = _mm256_set_m128(_mm256_i64gather_ps(b->moves, l1, 4),
                                        _mm256_i64gather_ps(b->moves, l0, 4));
            up = _mm256_add_ps(up, mv);
            low = _mm256_sub_ps(low, max_move);
            _mm256_storeu_ps(b->upper + i, up);
            _mm256_storeu_ps(b->lower + i, low);
        }
        __m256 half = _mm256_set_m128(_mm256_i64gather_ps(b->half, l1, 4),
                                      _mm256_i64gather_ps(b->half, l0, 4));
        /* max_ps(low, half) is half when equal, as low > half ? low : half */
        __m256 need = _mm256_cmp_ps(_mm256_add_ps(up, slack),
                                    _mm256_max_ps(low, half), _CMP_GE_OQ);
        int mask = _mm256_movemask_ps(need);
        __m256i lanes = _mm256_loadu_si256((const __m256i *)COMPRESS[mask]);
        __m256i at = _mm256_set1_epi64x(i);
        __m256i *out = (__m256i *)(idx + m);  /* m + 8 <= i - i0 + 8 <= SCREEN */
        _mm256_storeu_si256(out, _mm256_add_epi64(
            at, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(lanes))));
        _mm256_storeu_si256(out + 1, _mm256_add_epi64(
            at, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(lanes, 1))));
        m += __builtin_popcount(mask);
        if (!b->incremental) {  /* the labels that stand: sum their rows */
            for (unsigned rest = ~mask & 0xffu; rest; rest &= rest - 1) {
                Py_ssize_t r = i + __builtin_ctz(rest);
                add_row(b->delta + b->labels[r] * b->d, b->x + r * b->d, b->d,
                        row_weight(b, r));
            }
        }
    }
    for (; i < end; i++)
        m = screen_row(b, i, idx, m);
    return m;
}
#endif

static ALWAYS_INLINE Py_ssize_t
hamerly_rows_body(const lloyd_block *b, Py_ssize_t n, nearest_fn nearest,
                  screen_fn screen)
{
    Py_ssize_t idx[SCREEN], changed = 0, d = b->d;
    for (Py_ssize_t i0 = 0; i0 < n; i0 += SCREEN) {
        Py_ssize_t end = i0 + SCREEN < n ? i0 + SCREEN : n, m = 0;
        if (b->all_rows) {
            for (Py_ssize_t i = i0; i < end; i++)
                idx[m++] = i;
        } else {
            m = screen(b, i0, end, idx);
        }
        for (Py_ssize_t q = 0; q < m; q += TILE_ROWS) {
            Py_ssize_t ahead = q + PREFETCH_TILES * TILE_ROWS;
            for (Py_ssize_t p = ahead; p < ahead + TILE_ROWS && p < m; p++)
                prefetch_row(b->x + idx[p] * d, d);
            changed += settle(b, idx + q, m - q < TILE_ROWS ? m - q : TILE_ROWS,
                              nearest);
        }
    }
    return changed;
}

static Py_ssize_t
hamerly_rows_plain(const lloyd_block *b, Py_ssize_t n)
{
    return hamerly_rows_body(b, n, nearest_plain, screen_plain);
}

#ifdef HAVE_AVX2_BUILD
static AVX2 Py_ssize_t
hamerly_rows_avx2(const lloyd_block *b, Py_ssize_t n)
{
    return hamerly_rows_body(b, n, nearest_avx2, screen_avx2);
}
#endif

/* The nearest center of each of n rows (first minimum), TILE_ROWS at a
 * time: the distances of settle, so a row gets the label a pass gives it.
 * With an offset (d values), the rows are x - offset, shifted a tile at a
 * time into tile (TILE_ROWS * d floats), as a float32 subtraction, and
 * *peak is the largest magnitude of the shifted values (NaN if one is). Each
 * tile's arithmetic requests the next tile's rows (see ahead). Returns the
 * number of rows whose nearest distance is not finite (NaN or infinite
 * values in x make every distance of their row NaN or infinite). */
static ALWAYS_INLINE Py_ssize_t
nearest_rows_body(const float *x, Py_ssize_t n, Py_ssize_t d,
                  const float *offset, float *tile, float *peak,
                  const float *c_t, Py_ssize_t kp, const float *c_sq,
                  int64_t *labels, nearest_fn nearest)
{
    const float *rows[TILE_ROWS];
    int64_t arg[TILE_ROWS];
    float best[TILE_ROWS], second[TILE_ROWS];
    /* |value|'s bits: as unsigned ints they order as the magnitudes (NaN
     * above infinity), and their maximum vectorises where a float one,
     * NaN's order mattering, would not */
    uint32_t top = 0;
    Py_ssize_t bad = 0;
    for (Py_ssize_t i0 = 0; i0 < n; i0 += TILE_ROWS) {
        Py_ssize_t r = n - i0 < TILE_ROWS ? n - i0 : TILE_ROWS;
        for (Py_ssize_t q = 0; q < TILE_ROWS; q++) {  /* spare lanes: row i0 */
            const float *row = x + (i0 + (q < r ? q : 0)) * d;
            if (offset) {
                float *shifted = tile + q * d;
                for (Py_ssize_t t = 0; t < d; t++) {
                    float v = row[t] - offset[t];
                    uint32_t bits;
                    memcpy(&bits, &v, sizeof bits);
                    bits &= 0x7fffffffu;
                    top = bits > top ? bits : top;
                    shifted[t] = v;
                }
                row = shifted;
            }
            rows[q] = row;
        }
        /* the next tile's rows: consecutive rows of x */
        Py_ssize_t i1 = i0 + TILE_ROWS, i2 = i1 + TILE_ROWS;
        ahead next = {(const char *)(x + (i1 < n ? i1 : n) * d),
                      (const char *)(x + (i2 < n ? i2 : n) * d), 0};
        nearest(rows, r, d, c_t, kp, c_sq, arg, best, second, &next);
        for (Py_ssize_t q = 0; q < r; q++) {
            labels[i0 + q] = arg[q];
            bad += !isfinite(best[q]);
        }
    }
    memcpy(peak, &top, sizeof top);
    return bad;
}

static Py_ssize_t
nearest_rows_plain(const float *x, Py_ssize_t n, Py_ssize_t d,
                   const float *offset, float *tile, float *peak,
                   const float *c_t, Py_ssize_t kp, const float *c_sq,
                   int64_t *labels)
{
    return nearest_rows_body(x, n, d, offset, tile, peak, c_t, kp, c_sq,
                             labels, nearest_plain);
}

#ifdef HAVE_AVX2_BUILD
static AVX2 Py_ssize_t
nearest_rows_avx2(const float *x, Py_ssize_t n, Py_ssize_t d,
                  const float *offset, float *tile, float *peak,
                  const float *c_t, Py_ssize_t kp, const float *c_sq,
                  int64_t *labels)
{
    return nearest_rows_body(x, n, d, offset, tile, peak, c_t, kp, c_sq,
                             labels, nearest_avx2);
}
#endif

/* Whether the AVX2 loop runs here: built, and the CPU has AVX2 and FMA. */
static int
have_avx2(void)
{
#ifdef HAVE_AVX2_BUILD
    static int avx2 = -1;
    if (avx2 < 0) {
        __builtin_cpu_init();
        avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return avx2;
#else
    return 0;
#endif
}

/* The AVX2 loop where it runs (unless portable), else the portable one. */
static Py_ssize_t
hamerly_rows(const lloyd_block *b, Py_ssize_t n, int portable)
{
#ifdef HAVE_AVX2_BUILD
    if (have_avx2() && !portable)
        return hamerly_rows_avx2(b, n);
#endif
    return hamerly_rows_plain(b, n);
}

PyDoc_STRVAR(hamerly_simd_doc,
"hamerly_simd()\n"
"--\n\n"
"Whether hamerly_pass runs its AVX2 loop on this CPU. The portable loop\n"
"computes each distance one multiply-add at a time, slower than torch's\n"
"matrix products, so the caller uses it only for tests.");

static PyObject *
hamerly_simd(PyObject *self, PyObject *args)
{
    return PyBool_FromLong(have_avx2());
}

PyDoc_STRVAR(hamerly_pass_doc,
"hamerly_pass(x, x_sq, c_t, c_sq, half, labels, upper, lower, moves, w,\n"
"             delta, slack, all_rows, incremental, portable=False)\n"
"--\n\n"
"One Lloyd pass over a block of rows with Hamerly's bounds; returns the\n"
"number of rows whose label changed.\n\n"
"x (n, d) float32; x_sq (n,) float32 squared row norms; c_t (d, kp)\n"
"float32 transposed centers, kp a multiple of 8 (zero columns beyond k);\n"
"c_sq (kp,) float32 squared center norms, +inf beyond k; half (k,)\n"
"float32 half gaps to the nearest other center; labels (n,) int64,\n"
"upper and lower (n,) float32, updated in place; moves (k,) float32,\n"
"how far each center moved since the bounds were last updated, or None:\n"
"unless all_rows, a row's upper bound first grows by its center's move\n"
"and its lower bound shrinks by the largest move; w (n,) float32 sample\n"
"weights or None; delta (k, d) float64, to which the rows are added (all\n"
"of them, or with incremental only those that changed cluster, moved\n"
"from the old sum to the new). A row is recomputed when all_rows or when\n"
"upper + slack >= max(lower, half[label]). portable runs the plain C\n"
"loop where the AVX2 one would run (for tests). Buffers are\n"
"C-contiguous; the caller checks dtypes.");

static PyObject *
hamerly_pass(PyObject *self, PyObject *args)
{
    Py_buffer x, x_sq, c_t, c_sq, half, labels, upper, lower, moves, w, delta;
    PyObject *moves_obj, *w_obj, *result = NULL;
    float slack;
    int all_rows, incremental, portable = 0, have_moves = 0, have_w = 0;

    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*w*w*OOw*fpp|p:hamerly_pass", &x,
                          &x_sq, &c_t, &c_sq, &half, &labels, &upper, &lower,
                          &moves_obj, &w_obj, &delta, &slack, &all_rows,
                          &incremental, &portable))
        return NULL;
    if (moves_obj != Py_None) {
        if (PyObject_GetBuffer(moves_obj, &moves, PyBUF_SIMPLE) < 0)
            goto done;
        have_moves = 1;
    }
    if (w_obj != Py_None) {
        if (PyObject_GetBuffer(w_obj, &w, PyBUF_SIMPLE) < 0)
            goto done;
        have_w = 1;
    }
    Py_ssize_t fs = (Py_ssize_t)sizeof(float);
    Py_ssize_t n = x_sq.len / fs, kp = c_sq.len / fs, k = half.len / fs;
    Py_ssize_t d = n ? x.len / (n * fs) : 0;
    if (kp % 8 != 0 || k > kp || k < 1 || x.len != n * d * fs ||
        c_t.len != d * kp * fs || labels.len != n * (Py_ssize_t)sizeof(int64_t) ||
        upper.len != n * fs || lower.len != n * fs ||
        (have_moves && moves.len != k * fs) || (have_w && w.len != n * fs) ||
        delta.len != k * d * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError,
                        "hamerly_pass: buffer sizes do not match");
        goto done;
    }
    float max_move = 0.0f;
    if (have_moves) {
        const float *m = (const float *)moves.buf;
        for (Py_ssize_t j = 0; j < k; j++)
            max_move = fmaxf(max_move, m[j]);
    }
    lloyd_block b = {
        (const float *)x.buf, (const float *)x_sq.buf, (const float *)c_t.buf,
        (const float *)c_sq.buf, (const float *)half.buf,
        have_w ? (const float *)w.buf : NULL,
        have_moves ? (const float *)moves.buf : NULL, (int64_t *)labels.buf,
        (float *)upper.buf, (float *)lower.buf, (double *)delta.buf, d, kp,
        slack, max_move, all_rows, incremental,
    };
    Py_ssize_t changed = 0;
    if (n && d) {
        Py_BEGIN_ALLOW_THREADS
        changed = hamerly_rows(&b, n, portable);
        Py_END_ALLOW_THREADS
    }
    result = PyLong_FromSsize_t(changed);
done:
    PyBuffer_Release(&x);
    PyBuffer_Release(&x_sq);
    PyBuffer_Release(&c_t);
    PyBuffer_Release(&c_sq);
    PyBuffer_Release(&half);
    PyBuffer_Release(&labels);
    PyBuffer_Release(&upper);
    PyBuffer_Release(&lower);
    PyBuffer_Release(&delta);
    if (have_moves)
        PyBuffer_Release(&moves);
    if (have_w)
        PyBuffer_Release(&w);
    return result;
}

PyDoc_STRVAR(nearest_labels_doc,
"nearest_labels(x, offset, c_t, c_sq, labels, portable=False)\n"
"--\n\n"
"Write the nearest center of each row of x - offset into labels (the first\n"
"of equal distances), computing the distances as hamerly_pass does, so\n"
"that a row gets the label a Lloyd pass gives it. Returns (bad, peak):\n"
"the number of rows whose nearest distance is not finite (non-finite\n"
"values in x), and with an offset the largest magnitude of x - offset's\n"
"values (NaN if one is; 0.0 without an offset).\n\n"
"x (n, d) float32; offset (d,) float32, subtracted in float32, or None;\n"
"c_t (d, kp) and c_sq (kp,) float32 as hamerly_pass takes them; labels\n"
"(n,) int64, written. portable runs the plain C loop where the AVX2 one\n"
"would run (for tests). Buffers are C-contiguous; the caller checks\n"
"dtypes.");

static PyObject *
nearest_labels(PyObject *self, PyObject *args)
{
    Py_buffer x, offset, c_t, c_sq, labels;
    PyObject *offset_obj, *result = NULL;
    int portable = 0, have_offset = 0;
    float *tile = NULL;

    if (!PyArg_ParseTuple(args, "y*Oy*y*w*|p:nearest_labels", &x, &offset_obj,
                          &c_t, &c_sq, &labels, &portable))
        return NULL;
    if (offset_obj != Py_None) {
        if (PyObject_GetBuffer(offset_obj, &offset, PyBUF_SIMPLE) < 0)
            goto done;
        have_offset = 1;
    }
    Py_ssize_t fs = (Py_ssize_t)sizeof(float);
    Py_ssize_t n = labels.len / (Py_ssize_t)sizeof(int64_t), kp = c_sq.len / fs;
    Py_ssize_t d = kp ? c_t.len / (kp * fs) : 0;
    if (kp < 8 || kp % 8 != 0 || c_t.len != d * kp * fs || x.len != n * d * fs ||
        labels.len != n * (Py_ssize_t)sizeof(int64_t) ||
        (have_offset && offset.len != d * fs)) {
        PyErr_SetString(PyExc_ValueError,
                        "nearest_labels: buffer sizes do not match");
        goto done;
    }
    if (have_offset && n && d) {
        tile = PyMem_RawMalloc((size_t)(TILE_ROWS * d) * sizeof(float));
        if (!tile) {
            PyErr_NoMemory();
            goto done;
        }
    }
    const float *off = have_offset ? (const float *)offset.buf : NULL;
    Py_ssize_t bad = 0;
    float peak = 0.0f;
    if (n && d) {
        Py_BEGIN_ALLOW_THREADS
#ifdef HAVE_AVX2_BUILD
        if (have_avx2() && !portable)
            bad = nearest_rows_avx2((const float *)x.buf, n, d, off, tile,
                                    &peak, (const float *)c_t.buf, kp,
                                    (const float *)c_sq.buf,
                                    (int64_t *)labels.buf);
        else
#endif
            bad = nearest_rows_plain((const float *)x.buf, n, d, off, tile,
                                     &peak, (const float *)c_t.buf, kp,
                                     (const float *)c_sq.buf,
                                     (int64_t *)labels.buf);
        Py_END_ALLOW_THREADS
    }
    result = Py_BuildValue("nd", bad, (double)peak);
done:
    PyMem_RawFree(tile);
    PyBuffer_Release(&x);
    if (have_offset)
        PyBuffer_Release(&offset);
    PyBuffer_Release(&c_t);
    PyBuffer_Release(&c_sq);
    PyBuffer_Release(&labels);
    return result;
}

static PyMethodDef methods[] = {
    {"shift_sum", shift_sum, METH_VARARGS, shift_sum_doc},
    {"hamerly_pass", hamerly_pass, METH_VARARGS, hamerly_pass_doc},
    {"hamerly_simd", hamerly_simd, METH_NOARGS, hamerly_simd_doc},
    {"nearest_labels", nearest_labels, METH_VARARGS, nearest_labels_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_kernels",
    "Fused loops over the rows of X for the classical estimators.",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
#ifdef HAVE_AVX2_BUILD
    fill_compress();
#endif
    return PyModule_Create(&module);
}

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
 * skips the rows whose bounds prove the label cannot change, and adds the
 * rows (or, incrementally, only the rows that changed cluster) to float64
 * per-cluster sums. Each value of X is read once a pass, and the distances
 * of a row are never written to memory: torch's version of the same pass
 * (the fallback, in _lloyd.py) runs about ten tensor operations over
 * (rows, k) blocks plus an index_add_ over (rows, d), each a trip through
 * memory. The distances are ||c||^2 - 2 x.c in float32, as the fallback's
 * (||x||^2 is added for the bounds only); the first minimum wins ties.
 */
#define TILE_ROWS 8

#if defined(__GNUC__)
typedef float v8sf __attribute__((vector_size(32)));
typedef int32_t v8si __attribute__((vector_size(32)));

/* mask ? a : b, lane by lane (mask lanes all ones or all zeros). */
#define SELECT_I(mask, a, b) (((mask) & (a)) | (~(mask) & (b)))
#define SELECT_F(mask, a, b) ((v8sf)SELECT_I(mask, (v8si)(a), (v8si)(b)))

/* Nearest center (first minimum), its distance and the second smallest
 * distance of r <= TILE_ROWS rows, without ||x||^2. rows has TILE_ROWS
 * pointers (those beyond r are computed and ignored). c_t is (d, kp) with
 * kp a multiple of 8; c_sq has kp values, +inf beyond the k centers.
 *
 * Eight rows at a time keep eight independent multiply-add chains in
 * flight; each lane l of a row keeps the smallest and second smallest
 * distance of the centers l, l + 8, l + 16, ... (the first of equal ones),
 * without branches, and the lanes are merged at the end. */
static ALWAYS_INLINE void
nearest_two(const float *const *rows, Py_ssize_t r, Py_ssize_t d,
            const float *c_t, Py_ssize_t kp, const float *c_sq,
            int64_t *arg, float *best, float *second)
{
    const v8sf inf = {INFINITY, INFINITY, INFINITY, INFINITY,
                      INFINITY, INFINITY, INFINITY, INFINITY};
    const v8si lane = {0, 1, 2, 3, 4, 5, 6, 7};
    v8sf b1[TILE_ROWS], b2[TILE_ROWS];
    v8si at[TILE_ROWS];
    for (int q = 0; q < TILE_ROWS; q++) {
        b1[q] = inf;
        b2[q] = inf;
        at[q] = lane;
    }
    for (Py_ssize_t j0 = 0; j0 < kp; j0 += 8) {
        v8sf acc[TILE_ROWS];
        for (int q = 0; q < TILE_ROWS; q++)
            acc[q] = (v8sf){0};
        const float *ct = c_t + j0;
        for (Py_ssize_t t = 0; t < d; t++) {
            v8sf cv;
            memcpy(&cv, ct + t * kp, sizeof cv);
            for (int q = 0; q < TILE_ROWS; q++)
                acc[q] += rows[q][t] * cv;
        }
        v8sf cs;
        memcpy(&cs, c_sq + j0, sizeof cs);
        v8si j = lane + (int32_t)j0;
        for (int q = 0; q < TILE_ROWS; q++) {
            v8sf v = cs - 2.0f * acc[q];
            v8si lt = v < b1[q];  /* strictly: an equal later center loses */
            v8sf below2 = SELECT_F(v < b2[q], v, b2[q]);
            b2[q] = SELECT_F(lt, b1[q], below2);
            b1[q] = SELECT_F(lt, v, b1[q]);
            at[q] = SELECT_I(lt, j, at[q]);
        }
    }
    for (Py_ssize_t q = 0; q < r; q++) {
        int win = 0;
        for (int l = 1; l < 8; l++)
            if (b1[q][l] < b1[q][win] ||
                (b1[q][l] == b1[q][win] && at[q][l] < at[q][win]))
                win = l;
        float sec = b2[q][win];
        for (int l = 0; l < 8; l++)
            if (l != win && b1[q][l] < sec)
                sec = b1[q][l];
        best[q] = b1[q][win];
        second[q] = sec;
        arg[q] = at[q][win];
    }
}
#else
static ALWAYS_INLINE void
nearest_two(const float *const *rows, Py_ssize_t r, Py_ssize_t d,
            const float *c_t, Py_ssize_t kp, const float *c_sq,
            int64_t *arg, float *best, float *second)
{
    for (Py_ssize_t q = 0; q < r; q++) {
        best[q] = INFINITY;
        second[q] = INFINITY;
        arg[q] = 0;
        for (Py_ssize_t j = 0; j < kp; j++) {
            float dot = 0.0f;
            for (Py_ssize_t t = 0; t < d; t++)
                dot += rows[q][t] * c_t[t * kp + j];
            float v = c_sq[j] - 2.0f * dot;
            if (v < best[q]) {
                second[q] = best[q];
                best[q] = v;
                arg[q] = j;
            } else if (v < second[q]) {
                second[q] = v;
            }
        }
    }
}
#endif

/* delta[label] += scale * x (in double), d values. */
static ALWAYS_INLINE void
add_row(double *delta, const float *x, Py_ssize_t d, double scale)
{
    for (Py_ssize_t t = 0; t < d; t++)
        delta[t] += scale * (double)x[t];
}

typedef struct {
    const float *x, *x_sq, *c_t, *c_sq, *half, *w;
    int64_t *labels;
    float *upper, *lower;
    double *delta;
    Py_ssize_t d, kp;
    float slack;
    int all_rows, incremental;
} lloyd_block;

/* Settle the r pending rows idx[0..r): labels, bounds and sums. */
static ALWAYS_INLINE Py_ssize_t
settle(const lloyd_block *b, const Py_ssize_t *idx, Py_ssize_t r)
{
    const float *rows[TILE_ROWS];
    int64_t arg[TILE_ROWS];
    float best[TILE_ROWS], second[TILE_ROWS];
    Py_ssize_t changed = 0, d = b->d;
    for (Py_ssize_t q = 0; q < TILE_ROWS; q++)  /* spare lanes repeat row 0 */
        rows[q] = b->x + idx[q < r ? q : 0] * d;
    nearest_two(rows, r, d, b->c_t, b->kp, b->c_sq, arg, best, second);
    for (Py_ssize_t q = 0; q < r; q++) {
        Py_ssize_t i = idx[q];
        float xs = b->x_sq[i];
        b->upper[i] = sqrtf(fmaxf(best[q] + xs, 0.0f));
        b->lower[i] = sqrtf(fmaxf(second[q] + xs, 0.0f));
        int64_t old = b->labels[i], new = arg[q];
        double wi = b->w ? (double)b->w[i] : 1.0;
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

static ALWAYS_INLINE Py_ssize_t
hamerly_rows_body(const lloyd_block *b, Py_ssize_t n)
{
    Py_ssize_t idx[TILE_ROWS], pending = 0, changed = 0, d = b->d;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!b->all_rows) {
            int64_t lab = b->labels[i];
            float bound = fmaxf(b->lower[i], b->half[lab]);
            if (!(b->upper[i] + b->slack >= bound)) {
                if (!b->incremental)  /* the label stands: sum the row */
                    add_row(b->delta + lab * d, b->x + i * d, d,
                            b->w ? (double)b->w[i] : 1.0);
                continue;
            }
        }
        idx[pending++] = i;
        if (pending == TILE_ROWS) {
            changed += settle(b, idx, pending);
            pending = 0;
        }
    }
    if (pending)
        changed += settle(b, idx, pending);
    return changed;
}

static Py_ssize_t
hamerly_rows_plain(const lloyd_block *b, Py_ssize_t n)
{
    return hamerly_rows_body(b, n);
}

#if defined(__GNUC__) && defined(__x86_64__)
/* The same loop built for AVX2 with fused multiply-add, chosen at run time
 * where the CPU has both (GCC's target_clones can only pick one feature). */
#define HAVE_FMA_BUILD 1
__attribute__((target("avx2,fma"))) static Py_ssize_t
hamerly_rows_fma(const lloyd_block *b, Py_ssize_t n)
{
    return hamerly_rows_body(b, n);
}
#endif

static Py_ssize_t
hamerly_rows(const lloyd_block *b, Py_ssize_t n)
{
#ifdef HAVE_FMA_BUILD
    static int fma = -1;
    if (fma < 0) {
        __builtin_cpu_init();
        fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    if (fma)
        return hamerly_rows_fma(b, n);
#endif
    return hamerly_rows_plain(b, n);
}

PyDoc_STRVAR(hamerly_pass_doc,
"hamerly_pass(x, x_sq, c_t, c_sq, half, labels, upper, lower, w, delta,\n"
"             slack, all_rows, incremental)\n"
"--\n\n"
"One Lloyd pass over a block of rows with Hamerly's bounds; returns the\n"
"number of rows whose label changed.\n\n"
"x (n, d) float32; x_sq (n,) float32 squared row norms; c_t (d, kp)\n"
"float32 transposed centers, kp a multiple of 8 (zero columns beyond k);\n"
"c_sq (kp,) float32 squared center norms, +inf beyond k; half (k,)\n"
"float32 half gaps to the nearest other center; labels (n,) int64,\n"
"upper and lower (n,) float32, updated in place; w (n,) float32 sample\n"
"weights or None; delta (k, d) float64, to which the rows are added (all\n"
"of them, or with incremental only those that changed cluster, moved\n"
"from the old sum to the new). A row is recomputed when all_rows or when\n"
"upper + slack >= max(lower, half[label]). Buffers are C-contiguous;\n"
"the caller checks dtypes.");

static PyObject *
hamerly_pass(PyObject *self, PyObject *args)
{
    Py_buffer x, x_sq, c_t, c_sq, half, labels, upper, lower, w, delta;
    PyObject *w_obj, *result = NULL;
    float slack;
    int all_rows, incremental, have_w = 0;

    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*w*w*Ow*fpp:hamerly_pass", &x,
                          &x_sq, &c_t, &c_sq, &half, &labels, &upper, &lower,
                          &w_obj, &delta, &slack, &all_rows, &incremental))
        return NULL;
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
        (have_w && w.len != n * fs) ||
        delta.len != k * d * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError,
                        "hamerly_pass: buffer sizes do not match");
        goto done;
    }
    lloyd_block b = {
        (const float *)x.buf, (const float *)x_sq.buf, (const float *)c_t.buf,
        (const float *)c_sq.buf, (const float *)half.buf,
        have_w ? (const float *)w.buf : NULL, (int64_t *)labels.buf,
        (float *)upper.buf, (float *)lower.buf, (double *)delta.buf, d, kp,
        slack, all_rows, incremental,
    };
    Py_ssize_t changed = 0;
    if (n && d) {
        Py_BEGIN_ALLOW_THREADS
        changed = hamerly_rows(&b, n);
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
    if (have_w)
        PyBuffer_Release(&w);
    return result;
}

static PyMethodDef methods[] = {
    {"shift_sum", shift_sum, METH_VARARGS, shift_sum_doc},
    {"hamerly_pass", hamerly_pass, METH_VARARGS, hamerly_pass_doc},
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
    return PyModule_Create(&module);
}

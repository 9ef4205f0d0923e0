/* synth._ppmcore: the per-step work of the PPM memory (synth/ppm.py) and of the LSTM's gates
 * (synth/generate.py), in C, on the very arrays the NumPy code keeps.
 *
 * Why: a generation step with the memory is about 60 small NumPy calls, and NumPy's per-call
 * overhead, not the arithmetic, is what costs (SPEC section 7: 30 µs a step). Here a step is
 * two calls: `Tables.draw` (the memory's distributions, the mix with the LSTM, the class and
 * length drawn) and `Tables.add` (the short-term counts and the next context). The LSTM's gate
 * arithmetic is `Cell.inputs` and `Cell.gates`, around NumPy's tanh (vectorised, and the same
 * rounding on both paths) and the one matrix product that stays in NumPy (BLAS).
 *
 * The NumPy code is the reference: every function here repeats its arithmetic in the same
 * order, so the two agree to the last bits or nearly (sums of many terms may round apart),
 * and the counts, which are whole numbers, agree exactly. Arrays come in through the buffer
 * protocol; a wrong type, size or layout raises an exception, never a crash.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Keep in step with synth/ppm.py and synth/generate.py. */
#define WIDTH 32          /* ppm.WIDTH: distributions padded to 32 symbols */
#define NUM_CLASSES 25    /* notes.NUM_CLASSES */
#define NUM_LENGTHS 32    /* events.NUM_LENGTHS */
#define KEYS 9            /* ppm.ORDER + 1: tagged keys per stream */
#define MAX_SLOTS 10      /* ppm.ORDER + 2: short-term slots per stream */
#define BASE 64           /* ppm.BASE */
#define HEADS 64          /* generate._HEADS: the heads' logits, padded */
#define TINY 1e-300       /* ppm._TINY */
static const uint64_t HASH = 0x9E3779B97F4A7C15ULL;  /* ppm._HASH: Fibonacci hashing */

/* --- buffers ------------------------------------------------------------------------------ */

enum kind { INT64, FLOAT64, FLOAT32 };

/* Takes a C-contiguous buffer of `count` items of `kind` (count < 0: any count, reported in
 * *found), writable if asked; raises TypeError or ValueError otherwise. */
static int take(PyObject *obj, Py_buffer *view, enum kind kind, Py_ssize_t count, int writable,
                const char *name, Py_ssize_t *found)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    const char *format = view->format ? view->format : "B";
    if (*format == '@' || *format == '=' || *format == '<')
        format++;
    int ok = format[1] == '\0';
    if (kind == INT64)
        ok = ok && view->itemsize == 8 && (*format == 'l' || *format == 'q');
    else if (kind == FLOAT64)
        ok = ok && view->itemsize == 8 && *format == 'd';
    else
        ok = ok && view->itemsize == 4 && *format == 'f';
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s: expected a %s array", name,
                     kind == INT64 ? "int64" : kind == FLOAT64 ? "float64" : "float32");
        PyBuffer_Release(view);
        return -1;
    }
    Py_ssize_t items = view->len / view->itemsize;
    if (count >= 0 && items != count) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items, got %zd", name, count, items);
        PyBuffer_Release(view);
        return -1;
    }
    if (found)
        *found = items;
    return 0;
}

static void release(Py_buffer *views, int n)
{
    for (int i = 0; i < n; i++)
        PyBuffer_Release(&views[i]);
}

/* --- the memory's tables --------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    int has_long;         /* a long-term model (else the short-term model alone) */
    Py_buffer keys;       /* LongTerm.keys (n,) int64, sorted */
    Py_buffer probs;      /* LongTerm.probs (n, 32) float64 */
    Py_buffer entropy;    /* LongTerm.entropy (n,) float64 */
    Py_ssize_t n;
    int long_orders;      /* keys the long-term lookup reads: its order + 1 */
    Py_buffer table;      /* ShortTerm.table (top + 1, 32) float64 */
    Py_buffer stats;      /* ShortTerm.stats (top + 1, 2) float64: total, kinds */
    Py_ssize_t top;       /* the row never counted */
    int shift;            /* 64 - bits of the hash */
    int order;            /* the short-term order: order + 1 slots counted per stream */
    int models;           /* 1 + has_long */
} Tables;

static void tables_dealloc(Tables *self)
{
    if (self->has_long)
        release(&self->keys, 3);
    if (self->table.obj)
        PyBuffer_Release(&self->table);
    if (self->stats.obj)
        PyBuffer_Release(&self->stats);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Tables(keys, probs, entropy, long_orders, table, stats, bits, order): keys, probs and entropy
 * None when there is no long-term model. The arrays are held (not copied) until the object
 * goes: the NumPy code and this one read and write the same counts. */
static int tables_init(Tables *self, PyObject *args, PyObject *kwargs)
{
    PyObject *keys, *probs, *entropy, *table, *stats;
    int long_orders, bits, order;
    if (self->table.obj) {
        PyErr_SetString(PyExc_TypeError, "Tables is initialised once");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "OOOiOOii", &keys, &probs, &entropy, &long_orders, &table,
                          &stats, &bits, &order))
        return -1;
    if (bits < 1 || bits > 30 || order < 1 || order > KEYS - 1 || long_orders < 1 ||
        long_orders > KEYS) {
        PyErr_SetString(PyExc_ValueError, "Tables: bits, order or long orders out of range");
        return -1;
    }
    self->top = (Py_ssize_t)1 << bits;
    self->shift = 64 - bits;
    self->order = order;
    self->long_orders = long_orders;
    if (take(table, &self->table, FLOAT64, (self->top + 1) * WIDTH, 1, "table", NULL) < 0)
        return -1;
    if (take(stats, &self->stats, FLOAT64, (self->top + 1) * 2, 1, "stats", NULL) < 0) {
        PyBuffer_Release(&self->table);
        return -1;
    }
    self->has_long = keys != Py_None;
    self->models = 1 + self->has_long;
    if (!self->has_long)
        return 0;
    if (take(keys, &self->keys, INT64, -1, 0, "keys", &self->n) < 0)
        goto fail;
    if (self->n < 1) {
        PyErr_SetString(PyExc_ValueError, "keys: the long-term model is empty");
        PyBuffer_Release(&self->keys);
        goto fail;
    }
    if (take(probs, &self->probs, FLOAT64, self->n * WIDTH, 0, "probs", NULL) < 0) {
        PyBuffer_Release(&self->keys);
        goto fail;
    }
    if (take(entropy, &self->entropy, FLOAT64, self->n, 0, "entropy", NULL) < 0) {
        release(&self->keys, 2);
        goto fail;
    }
    return 0;
fail:
    self->has_long = 0;
    PyBuffer_Release(&self->table);
    PyBuffer_Release(&self->stats);
    return -1;
}

/* The long-term row of each stream, as LongTerm.lookup: the position of each of the first
 * long_orders keys in the sorted keys (np.searchsorted, left), and the row of the longest
 * found (found contexts are a prefix of the orders). */
static void lookup(const Tables *self, const int64_t *tagged, Py_ssize_t rows[2])
{
    const int64_t *keys = self->keys.buf;
    for (int s = 0; s < 2; s++) {
        Py_ssize_t where[KEYS];
        int found = 0;
        for (int k = 0; k < self->long_orders; k++) {
            int64_t key = tagged[s * KEYS + k];
            Py_ssize_t lo = 0, hi = self->n;
            while (lo < hi) {
                Py_ssize_t mid = lo + (hi - lo) / 2;
                if (keys[mid] < key)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            where[k] = lo;
            found += lo < self->n && keys[lo] == key;
        }
        /* NumPy's index found - 1 is -1 when nothing is found: the last position. */
        rows[s] = where[found > 0 ? found - 1 : self->long_orders - 1];
        if (rows[s] >= self->n)
            rows[s] = self->n - 1;
    }
}

/* The short-term distributions (2, 32) and their entropies, as ShortTerm.probs and
 * Memory.parts: PPM-C interpolated over the slots, the order -1 model uniform. */
static void short_probs(const Tables *self, const Py_ssize_t *slots, double *out,
                        double *entropies)
{
    const double *table = self->table.buf, *stats = self->stats.buf;
    int count = self->order + 2;  /* slots per stream, the row never counted last */
    for (int s = 0; s < 2; s++) {
        const Py_ssize_t *slot = slots + s * count;
        double denominator[MAX_SLOTS], below[MAX_SLOTS];
        for (int j = 0; j < count; j++) {
            const double *st = stats + 2 * slot[j];
            denominator[j] = st[0] + st[1] + TINY;
            below[j] = (st[1] + TINY) / denominator[j];
        }
        /* Weight of order j: the escapes of every longer order (np.cumprod from the top). */
        for (int j = count - 2; j >= 0; j--)
            below[j] = below[j + 1] * below[j];
        double *p = out + s * WIDTH;
        int size = s == 0 ? NUM_CLASSES : NUM_LENGTHS;
        for (int i = 0; i < WIDTH; i++)
            p[i] = 0.0;
        for (int j = 0; j < count - 1; j++) {
            double weight = below[j + 1] / denominator[j];
            const double *row = table + WIDTH * slot[j];
            for (int i = 0; i < WIDTH; i++)
                p[i] += weight * row[i];
        }
        double bits = 0.0;
        for (int i = 0; i < WIDTH; i++) {
            if (i < size)
                p[i] += below[0] * (1.0 / size);
            if (p[i] != 0.0)  /* a zero adds 0 * log2(TINY) = 0: no need to take the log */
                bits += p[i] * log2(p[i] + TINY);
        }
        entropies[s] = -bits;
    }
}

/* Memory.parts into out (models, 2, 32) and entropies (models, 2), the long-term model first. */
static void parts(const Tables *self, const int64_t *tagged, const Py_ssize_t *slots,
                  double *out, double *entropies)
{
    int last = self->models - 1;
    short_probs(self, slots, out + last * 2 * WIDTH, entropies + last * 2);
    if (self->has_long) {
        Py_ssize_t rows[2];
        lookup(self, tagged, rows);
        const double *probs = self->probs.buf, *entropy = self->entropy.buf;
        for (int s = 0; s < 2; s++) {
            memcpy(out + s * WIDTH, probs + rows[s] * WIDTH, WIDTH * sizeof(double));
            entropies[s] = entropy[rows[s]];
        }
    }
}

/* One draw of generate._draw_mixed: the LSTM's softmax mixed with the memory's distributions
 * (rows of `probs` WIDTH * 2 apart, their entropies 2 apart: one stream of (models, 2, 32) and
 * (models, 2)) by IDyOM's entropy weights, then argmax(log p + noise). */
static int draw_mixed(const double *logits, int size, const double *probs,
                      const double *entropies, int models, double bias, const float *noise)
{
    double top = logits[0], exp_[WIDTH], total = 0.0, dot = 0.0;
    for (int i = 1; i < size; i++)
        if (logits[i] > top)
            top = logits[i];
    for (int i = 0; i < size; i++) {
        exp_[i] = exp(logits[i] - top);
        total += exp_[i];
        dot += exp_[i] * (logits[i] - top);
    }
    double scale = log2((double)size);
    double lstm_bits = (log(total) - dot / total) / log(2.0);
    double weights[3], whole;
    weights[0] = pow(fmax(lstm_bits / scale, 1e-6), -bias);
    whole = weights[0];
    for (int m = 0; m < models; m++) {
        weights[m + 1] = pow(fmax(entropies[2 * m] / scale, 1e-6), -bias);
        whole += weights[m + 1];
    }
    double own = weights[0] / (whole * total);
    int best = 0;
    double best_value = -HUGE_VAL;
    for (int i = 0; i < size; i++) {
        double p = 0.0;
        for (int m = 0; m < models; m++)
            p += weights[m + 1] / whole * probs[m * 2 * WIDTH + i];
        p += exp_[i] * own;
        double value = log(p) + (double)noise[i];
        if (value > best_value || (i == 0)) {
            best = i;
            best_value = value;
        }
    }
    return best;
}

/* Tables.draw(heads, length_by_class, noise, bias, length_bias, tagged, slots, probs,
 * entropies) -> (class, length class): the memory's parts into probs and entropies (as
 * Memory.parts), then the class and its length drawn as generate._next_mixed draws them. */
static PyObject *tables_draw(Tables *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "draw takes 9 arguments");
        return NULL;
    }
    double bias = PyFloat_AsDouble(args[3]), length_bias = PyFloat_AsDouble(args[4]);
    if (PyErr_Occurred())
        return NULL;
    Py_buffer v[7];
    int held = 0;
    Py_ssize_t heads_size;
    int count = self->order + 2;
    if (take(args[0], &v[held], FLOAT32, -1, 0, "heads", &heads_size) < 0)
        goto fail;
    held++;
    if (heads_size < NUM_CLASSES + NUM_LENGTHS) {
        PyErr_SetString(PyExc_ValueError, "heads: too short");
        goto fail;
    }
    if (take(args[1], &v[held], FLOAT32, NUM_CLASSES * NUM_LENGTHS, 0, "length_by_class",
             NULL) < 0)
        goto fail;
    held++;
    if (take(args[2], &v[held], FLOAT32, NUM_CLASSES + NUM_LENGTHS, 0, "noise", NULL) < 0)
        goto fail;
    held++;
    if (take(args[5], &v[held], INT64, 2 * KEYS, 0, "tagged", NULL) < 0)
        goto fail;
    held++;
    if (take(args[6], &v[held], INT64, 2 * count, 0, "slots", NULL) < 0)
        goto fail;
    held++;
    if (take(args[7], &v[held], FLOAT64, self->models * 2 * WIDTH, 1, "probs", NULL) < 0)
        goto fail;
    held++;
    if (take(args[8], &v[held], FLOAT64, self->models * 2, 1, "entropies", NULL) < 0)
        goto fail;
    held++;
    const Py_ssize_t *slots = v[4].buf;
    for (int i = 0; i < 2 * count; i++)
        if (slots[i] < 0 || slots[i] > self->top) {
            PyErr_SetString(PyExc_ValueError, "slots: out of the table");
            goto fail;
        }
    const float *heads = v[0].buf, *by_class = v[1].buf, *noise = v[2].buf;
    double *probs = v[5].buf, *entropies = v[6].buf;
    parts(self, v[3].buf, slots, probs, entropies);

    double logits[WIDTH];
    for (int i = 0; i < NUM_CLASSES; i++)
        logits[i] = heads[i];
    int cls = draw_mixed(logits, NUM_CLASSES, probs, entropies, self->models, bias, noise);
    /* The length head: its float32 sum with the class's row, as NumPy adds them. */
    for (int i = 0; i < NUM_LENGTHS; i++)
        logits[i] = (double)(float)(heads[NUM_CLASSES + i] + by_class[cls * NUM_LENGTHS + i]);
    int length = draw_mixed(logits, NUM_LENGTHS, probs + WIDTH, entropies + 1, self->models,
                            length_bias, noise + NUM_CLASSES);
    release(v, held);
    return Py_BuildValue("ii", cls, length);
fail:
    release(v, held);
    return NULL;
}

/* Tables.parts(tagged, slots, probs, entropies): Memory.parts into probs and entropies. */
static PyObject *tables_parts(Tables *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "parts takes 4 arguments");
        return NULL;
    }
    Py_buffer v[4];
    int held = 0, count = self->order + 2;
    if (take(args[0], &v[held], INT64, 2 * KEYS, 0, "tagged", NULL) < 0)
        goto fail;
    held++;
    if (take(args[1], &v[held], INT64, 2 * count, 0, "slots", NULL) < 0)
        goto fail;
    held++;
    if (take(args[2], &v[held], FLOAT64, self->models * 2 * WIDTH, 1, "probs", NULL) < 0)
        goto fail;
    held++;
    if (take(args[3], &v[held], FLOAT64, self->models * 2, 1, "entropies", NULL) < 0)
        goto fail;
    held++;
    const Py_ssize_t *slots = v[1].buf;
    for (int i = 0; i < 2 * count; i++)
        if (slots[i] < 0 || slots[i] > self->top) {
            PyErr_SetString(PyExc_ValueError, "slots: out of the table");
            goto fail;
        }
    parts(self, v[0].buf, slots, v[2].buf, v[3].buf);
    release(v, held);
    Py_RETURN_NONE;
fail:
    release(v, held);
    return NULL;
}

/* Counts one event (step 1) or takes it back (step -1) after the counted slots, as
 * ShortTerm.add does with NumPy's fancy indexing: every cell read before any is written, and
 * where two contexts share a slot (a hash collision) the last write wins, so a slot counts the
 * event once. Then restore, which takes back with the same rule, gives the same tables. */
static void count_event(Tables *self, const Py_ssize_t *slots, const long tokens[2], int step)
{
    double *table = self->table.buf, *stats = self->stats.buf;
    int count = self->order + 2, counted = count - 1;
    double before[2 * MAX_SLOTS], total[2 * MAX_SLOTS], kinds[2 * MAX_SLOTS];
    for (int s = 0; s < 2; s++)
        for (int j = 0; j < counted; j++) {
            Py_ssize_t slot = slots[s * count + j];
            before[s * counted + j] = table[slot * WIDTH + tokens[s]];
            total[s * counted + j] = stats[2 * slot];
            kinds[s * counted + j] = stats[2 * slot + 1];
        }
    for (int s = 0; s < 2; s++)
        for (int j = 0; j < counted; j++)
            table[slots[s * count + j] * WIDTH + tokens[s]] = before[s * counted + j] + step;
    for (int s = 0; s < 2; s++)
        for (int j = 0; j < counted; j++)
            stats[2 * slots[s * count + j]] = total[s * counted + j] + step;
    for (int s = 0; s < 2; s++)
        for (int j = 0; j < counted; j++) {
            double b = before[s * counted + j];
            double change = step > 0 ? (b == 0.0) : -1.0 * (b == 1.0);
            stats[2 * slots[s * count + j] + 1] = kinds[s * counted + j] + change;
        }
}

static int read_tokens(PyObject *const *args, long tokens[2])
{
    tokens[0] = PyLong_AsLong(args[0]);
    tokens[1] = PyLong_AsLong(args[1]);
    if (PyErr_Occurred())
        return -1;
    if (tokens[0] < 0 || tokens[0] >= NUM_CLASSES || tokens[1] < 0 || tokens[1] >= NUM_LENGTHS) {
        PyErr_SetString(PyExc_ValueError, "event: class or length class out of range");
        return -1;
    }
    return 0;
}

/* Tables.add(class, length class, slots, tagged, next_slots, next_tagged): counts the event
 * after the contexts in slots (as ShortTerm.add), then writes the tagged keys after it and
 * their slots (as Memory.add and ShortTerm.slots). */
static PyObject *tables_add(Tables *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "add takes 6 arguments");
        return NULL;
    }
    long tokens[2];
    if (read_tokens(args, tokens) < 0)
        return NULL;
    Py_buffer v[4];
    int held = 0, count = self->order + 2;
    if (take(args[2], &v[held], INT64, 2 * count, 0, "slots", NULL) < 0)
        goto fail;
    held++;
    if (take(args[3], &v[held], INT64, 2 * KEYS, 0, "tagged", NULL) < 0)
        goto fail;
    held++;
    if (take(args[4], &v[held], INT64, 2 * count, 1, "next_slots", NULL) < 0)
        goto fail;
    held++;
    if (take(args[5], &v[held], INT64, 2 * KEYS, 1, "next_tagged", NULL) < 0)
        goto fail;
    held++;
    const Py_ssize_t *slots = v[0].buf;
    for (int i = 0; i < 2 * count; i++)
        if (slots[i] < 0 || slots[i] > self->top) {
            PyErr_SetString(PyExc_ValueError, "slots: out of the table");
            goto fail;
        }
    count_event(self, slots, tokens, 1);
    const int64_t *tagged = v[1].buf;
    int64_t *next = v[3].buf;
    Py_ssize_t *next_slots = v[2].buf;
    /* key * 64 + token + 1 in each stream, with the stream in the lowest bit (ppm._tag).
     * Unsigned, so keys out of range wrap as NumPy's do instead of overflowing. */
    const uint64_t plus[2] = {2 * tokens[0] + 2, 2 * tokens[1] + 2 - (BASE - 1)};
    for (int s = 0; s < 2; s++) {
        next[s * KEYS] = s;
        for (int k = 1; k < KEYS; k++)
            next[s * KEYS + k] = (int64_t)((uint64_t)tagged[s * KEYS + k - 1] * BASE + plus[s]);
        for (int j = 0; j < count - 1; j++)
            next_slots[s * count + j] =
                (Py_ssize_t)(((uint64_t)next[s * KEYS + j] * HASH) >> self->shift);
        next_slots[s * count + count - 1] = self->top;
    }
    release(v, held);
    Py_RETURN_NONE;
fail:
    release(v, held);
    return NULL;
}

/* Tables.count(class, length class, slots, step): counts (1) or takes back (-1) one event. */
static PyObject *tables_count(Tables *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "count takes 4 arguments");
        return NULL;
    }
    long tokens[2];
    if (read_tokens(args, tokens) < 0)
        return NULL;
    long step = PyLong_AsLong(args[3]);
    if (step == -1 && PyErr_Occurred())
        return NULL;
    if (step != 1 && step != -1) {
        PyErr_SetString(PyExc_ValueError, "count: step is 1 or -1");
        return NULL;
    }
    Py_buffer view;
    int count = self->order + 2;
    if (take(args[2], &view, INT64, 2 * count, 0, "slots", NULL) < 0)
        return NULL;
    const Py_ssize_t *slots = view.buf;
    for (int i = 0; i < 2 * count; i++)
        if (slots[i] < 0 || slots[i] > self->top) {
            PyErr_SetString(PyExc_ValueError, "slots: out of the table");
            PyBuffer_Release(&view);
            return NULL;
        }
    count_event(self, slots, tokens, (int)step);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyMethodDef tables_methods[] = {
    {"draw", (PyCFunction)(void (*)(void))tables_draw, METH_FASTCALL,
     "draw(heads, length_by_class, noise, bias, length_bias, tagged, slots, probs, entropies)"
     " -> (class, length class)"},
    {"parts", (PyCFunction)(void (*)(void))tables_parts, METH_FASTCALL,
     "parts(tagged, slots, probs, entropies): the memory's distributions and entropies"},
    {"add", (PyCFunction)(void (*)(void))tables_add, METH_FASTCALL,
     "add(class, length class, slots, tagged, next_slots, next_tagged)"},
    {"count", (PyCFunction)(void (*)(void))tables_count, METH_FASTCALL,
     "count(class, length class, slots, step)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TablesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "synth._ppmcore.Tables",
    .tp_doc = "The PPM memory's tables (held, not copied) and its per-step work.",
    .tp_basicsize = sizeof(Tables),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)tables_init,
    .tp_dealloc = (destructor)tables_dealloc,
    .tp_methods = tables_methods,
};

/* --- the LSTM's gates ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    Py_buffer class_in;   /* (25, 4u) float32: input rows of the classes, bias included */
    Py_buffer length_in;  /* (32, 4u) float32 */
    Py_buffer gate_mul;   /* (4u,) float32: 0.5 on sigmoid gates, 1 on the cell gate */
    Py_buffer gate_add;   /* (4u,) float32 */
    Py_ssize_t units;
} Cell;

static void cell_dealloc(Cell *self)
{
    if (self->gate_add.obj)
        release(&self->class_in, 4);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int cell_init(Cell *self, PyObject *args, PyObject *kwargs)
{
    PyObject *objects[4];
    Py_ssize_t units;
    if (self->gate_add.obj) {
        PyErr_SetString(PyExc_TypeError, "Cell is initialised once");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "OOOOn", &objects[0], &objects[1], &objects[2], &objects[3],
                          &units))
        return -1;
    if (units < 1) {
        PyErr_SetString(PyExc_ValueError, "Cell: units must be positive");
        return -1;
    }
    Py_buffer *views = &self->class_in;
    const Py_ssize_t counts[4] = {NUM_CLASSES * 4 * units, NUM_LENGTHS * 4 * units, 4 * units,
                                  4 * units};
    const char *names[4] = {"class_in", "length_in", "gate_mul", "gate_add"};
    for (int i = 0; i < 4; i++)
        if (take(objects[i], &views[i], FLOAT32, counts[i], 0, names[i], NULL) < 0) {
            release(views, i);
            memset(views, 0, 4 * sizeof(Py_buffer));
            return -1;
        }
    self->units = units;
    return 0;
}

/* Cell.inputs(out, class, length class, z): the gates' pre-activations, out's recurrent part
 * plus the event's input rows, added in float32 in NumPy's order. */
static PyObject *cell_inputs(Cell *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "inputs takes 4 arguments");
        return NULL;
    }
    long cls = PyLong_AsLong(args[1]), length = PyLong_AsLong(args[2]);
    if (PyErr_Occurred())
        return NULL;
    if (cls < 0 || cls >= NUM_CLASSES || length < 0 || length >= NUM_LENGTHS) {
        PyErr_SetString(PyExc_ValueError, "event: class or length class out of range");
        return NULL;
    }
    Py_ssize_t n = 4 * self->units;
    Py_buffer v[2];
    int held = 0;
    if (take(args[0], &v[held], FLOAT32, HEADS + n, 0, "out", NULL) < 0)
        goto fail;
    held++;
    if (take(args[3], &v[held], FLOAT32, n, 1, "z", NULL) < 0)
        goto fail;
    held++;
    const float *recurrent = (const float *)v[0].buf + HEADS;
    const float *class_in = (const float *)self->class_in.buf + cls * n;
    const float *length_in = (const float *)self->length_in.buf + length * n;
    float *z = v[1].buf;
    for (Py_ssize_t j = 0; j < n; j++)
        z[j] = (recurrent[j] + class_in[j]) + length_in[j];
    release(v, held);
    Py_RETURN_NONE;
fail:
    release(v, held);
    return NULL;
}

/* Cell.gates(z, c, next_c): z holds tanh of the pre-activations (NumPy's tanh, so both paths
 * round alike); scales it in place into the gates i, f, g, o (a sigmoid is 0.5 tanh(x / 2) +
 * 0.5) and writes the new cell state f c + i g into next_c. */
static PyObject *cell_gates(Cell *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "gates takes 3 arguments");
        return NULL;
    }
    Py_ssize_t u = self->units;
    Py_buffer v[3];
    int held = 0;
    if (take(args[0], &v[held], FLOAT32, 4 * u, 1, "z", NULL) < 0)
        goto fail;
    held++;
    if (take(args[1], &v[held], FLOAT32, u, 0, "c", NULL) < 0)
        goto fail;
    held++;
    if (take(args[2], &v[held], FLOAT32, u, 1, "next_c", NULL) < 0)
        goto fail;
    held++;
    float *z = v[0].buf, *next_c = v[2].buf;
    const float *c = v[1].buf, *mul = self->gate_mul.buf, *add = self->gate_add.buf;
    for (Py_ssize_t j = 0; j < 4 * u; j++) {
        float scaled = z[j] * mul[j];
        z[j] = scaled + add[j];
    }
    for (Py_ssize_t j = 0; j < u; j++) {
        float kept = z[u + j] * c[j], added = z[j] * z[2 * u + j];
        next_c[j] = kept + added;
    }
    release(v, held);
    Py_RETURN_NONE;
fail:
    release(v, held);
    return NULL;
}

static PyMethodDef cell_methods[] = {
    {"inputs", (PyCFunction)(void (*)(void))cell_inputs, METH_FASTCALL,
     "inputs(out, class, length class, z): the gates' pre-activations"},
    {"gates", (PyCFunction)(void (*)(void))cell_gates, METH_FASTCALL,
     "gates(z, c, next_c): the gates from tanh(z), in place, and the new cell state"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CellType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "synth._ppmcore.Cell",
    .tp_doc = "The LSTM cell's input rows and gate scales (held, not copied).",
    .tp_basicsize = sizeof(Cell),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)cell_init,
    .tp_dealloc = (destructor)cell_dealloc,
    .tp_methods = cell_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_ppmcore",
    .m_doc = "The PPM memory's and the LSTM gates' per-step work in C (see synth/ppm.py).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__ppmcore(void)
{
    if (PyType_Ready(&TablesType) < 0 || PyType_Ready(&CellType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    if (PyModule_AddObjectRef(m, "Tables", (PyObject *)&TablesType) < 0 ||
        PyModule_AddObjectRef(m, "Cell", (PyObject *)&CellType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

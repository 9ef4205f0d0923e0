/* synth.learn._ppmcore: the per-step work of the PPM memory (synth/learn/memory.py) and of the
 * LSTM's gates (synth/learn/generate.py), in C, on the very arrays the NumPy code keeps.
 *
 * Why: a generation step with the memory is about 60 small NumPy calls, and NumPy's per-call
 * overhead, not the arithmetic, is what costs (SPEC section 7: 30 µs a step). Here a step is
 * two calls: `Tables.draw` (the class parts, the class drawn from their mix with the LSTM, then
 * the length parts for that class and the length drawn) and `Tables.add` (the short-term counts
 * of both streams and the next position). The LSTM's gate arithmetic is `Cell.inputs` and
 * `Cell.gates`, around NumPy's tanh (vectorised, and the same rounding on both paths) and the
 * one matrix product that stays in NumPy (BLAS).
 *
 * The memory's position (Memory._now) is an immutable bytes object: the class history's keys,
 * then the length history's (int64, as ppm.history and ppm.advance make them), so the undo log
 * and `Memory.state` hold it as it is. The contexts, their slots in the short-term table and
 * the long-term rows are derived from it at each call (a few multiplications).
 *
 * The NumPy code is the reference: every function here repeats its arithmetic in the same
 * order (sums of 25 or 32 terms as NumPy's pairwise sum adds them), so the two agree to the
 * last bits or nearly (BLAS's products and NumPy's vectorised logarithms and exponentials may
 * round a last bit apart), and the counts, which are whole numbers, agree exactly. Arrays come
 * in through the buffer protocol; a wrong type, size or layout raises an exception, never a
 * crash.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Keep in step with synth/learn/ppm.py, memory.py, gate.py and generate.py. */
#define WIDTH 32          /* ppm.WIDTH: distributions padded to 32 symbols */
#define NUM_CLASSES 25    /* notes.NUM_CLASSES */
#define NUM_LENGTHS 32    /* events.NUM_LENGTHS */
#define MAX_HISTORY 9     /* ppm.ORDER + 1: history keys per stream */
#define MAX_KEYS 10       /* a stream's contexts: the history's, and the empty one when linked */
#define MAX_MODELS 2      /* the memory's models: long-term and short-term */
#define BASE 64           /* ppm.BASE */
#define LINK_BASE 1024    /* ppm.LINK_BASE */
#define HEADS 64          /* generate._HEADS: the heads' logits, padded */
#define TINY 1e-300       /* ppm._TINY */
static const uint64_t HASH = 0x9E3779B97F4A7C15ULL;  /* ppm.HASH: Fibonacci hashing */

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

/* NumPy's sum of n (8 <= n < 128) doubles: eight running sums, combined pairwise, then the
 * remainder (pairwise_sum in NumPy's loops), so the totals agree to the bit. */
static double numpy_sum(const double *a, int n)
{
    double r[8];
    int whole = n - n % 8;
    for (int j = 0; j < 8; j++)
        r[j] = a[j];
    for (int i = 8; i < whole; i += 8)
        for (int j = 0; j < 8; j++)
            r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (int i = whole; i < n; i++)
        res += a[i];
    return res;
}

/* --- the memory's tables --------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    int has_long;         /* a long-term model (else the short-term model alone) */
    Py_buffer keys;       /* LongTerm.keys (n,) int64, sorted */
    Py_buffer probs;      /* LongTerm.probs (n, 32) float64 */
    Py_buffer entropy;    /* LongTerm.entropy (n,) float64 */
    Py_ssize_t n;
    Py_buffer table;      /* ShortTerm.table (top + 1, 32) float64 */
    Py_buffer stats;      /* ShortTerm.stats (top + 1, 2) float64: total, kinds */
    Py_ssize_t top;       /* the row never counted */
    int shift;            /* 64 - bits of the hash */
    int link;             /* lengths read the event's class and the (class, length) events */
    int sizes[2];         /* Memory._sizes: history keys of each stream */
    int long_widths[2];   /* LongTerm.widths: contexts the long-term lookup reads */
    int short_widths[2];  /* Memory._short_widths: contexts the short-term model counts */
    int models;           /* the memory's models: 1 + has_long */
    int gated;            /* gates set (`Tables.gates`) */
    double gain[2][MAX_MODELS + 1];  /* per head (classes, lengths): exp(offset), LSTM first */
    double bias[2][MAX_MODELS + 1];
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

/* Tables(keys, probs, entropy, table, stats, bits, link, sizes, long_widths, short_widths):
 * keys, probs and entropy None when there is no long-term model; the others as Memory keeps
 * them. The arrays are held (not copied) until the object goes: the NumPy code and this one
 * read and write the same counts. */
static int tables_init(Tables *self, PyObject *args, PyObject *kwargs)
{
    PyObject *keys, *probs, *entropy, *table, *stats;
    int bits, link;
    if (self->table.obj) {
        PyErr_SetString(PyExc_TypeError, "Tables is initialised once");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "OOOOOip(ii)(ii)(ii)", &keys, &probs, &entropy, &table, &stats,
                          &bits, &link, &self->sizes[0], &self->sizes[1], &self->long_widths[0],
                          &self->long_widths[1], &self->short_widths[0],
                          &self->short_widths[1]))
        return -1;
    self->link = link;
    self->has_long = keys != Py_None;
    int ok = bits >= 1 && bits <= 30;
    for (int s = 0; s < 2; s++) {
        /* Contexts of a stream: its history keys, and the empty one before them when linked. */
        int contexts = self->sizes[s] + (s == 1 && link);
        ok = ok && self->sizes[s] >= 1 && self->sizes[s] <= MAX_HISTORY &&
             self->short_widths[s] >= 1 && self->short_widths[s] <= contexts &&
             (!self->has_long || (self->long_widths[s] >= 1 &&
                                  self->long_widths[s] <= contexts));
    }
    if (!ok) {
        self->has_long = 0;
        PyErr_SetString(PyExc_ValueError, "Tables: bits, sizes or widths out of range");
        return -1;
    }
    self->top = (Py_ssize_t)1 << bits;
    self->shift = 64 - bits;
    self->models = 1 + self->has_long;
    self->gated = 0;
    if (take(table, &self->table, FLOAT64, (self->top + 1) * WIDTH, 1, "table", NULL) < 0) {
        self->has_long = 0;
        return -1;
    }
    if (take(stats, &self->stats, FLOAT64, (self->top + 1) * 2, 1, "stats", NULL) < 0) {
        self->has_long = 0;
        PyBuffer_Release(&self->table);
        return -1;
    }
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

/* The position `now` (bytes: both histories' keys) copied out, checked. */
static int read_now(const Tables *self, PyObject *now, int64_t *history)
{
    if (!PyBytes_Check(now)) {
        PyErr_SetString(PyExc_TypeError, "now: expected the memory's position (bytes)");
        return -1;
    }
    Py_ssize_t size = (Py_ssize_t)(self->sizes[0] + self->sizes[1]) * 8;
    if (PyBytes_GET_SIZE(now) != size) {
        PyErr_Format(PyExc_ValueError, "now: expected %zd bytes, got %zd", size,
                     PyBytes_GET_SIZE(now));
        return -1;
    }
    memcpy(history, PyBytes_AS_STRING(now), size);
    return 0;
}

/* A stream's tagged contexts from the position (ppm.class_contexts, ppm.length_contexts; cls
 * is the event's class, which linked lengths read). Unsigned, so keys out of range wrap as
 * NumPy's do instead of overflowing. Returns how many. */
static int contexts(const Tables *self, const int64_t *history, int stream, long cls,
                    int64_t *keys)
{
    if (stream == 0) {
        for (int k = 0; k < self->sizes[0]; k++)
            keys[k] = (int64_t)((uint64_t)history[k] * 2);
        return self->sizes[0];
    }
    const int64_t *lengths = history + self->sizes[0];
    if (!self->link) {
        for (int k = 0; k < self->sizes[1]; k++)
            keys[k] = (int64_t)((uint64_t)lengths[k] * 2 + 1);
        return self->sizes[1];
    }
    keys[0] = 1;  /* the empty context */
    for (int k = 0; k < self->sizes[1]; k++)
        keys[k + 1] = (int64_t)(((uint64_t)lengths[k] * LINK_BASE + (uint64_t)(cls + 1)) * 2 + 1);
    return self->sizes[1] + 1;
}

/* The short-term slots of the first `width` contexts, then the row never counted
 * (ShortTerm.slots). */
static void slots_of(const Tables *self, const int64_t *keys, int width, Py_ssize_t *slots)
{
    for (int j = 0; j < width; j++)
        slots[j] = (Py_ssize_t)(((uint64_t)keys[j] * HASH) >> self->shift);
    slots[width] = self->top;
}

/* The long-term row, as LongTerm.lookup: the position of each of the first `width` contexts
 * in the sorted keys (np.searchsorted, left), and the row of the longest found (found contexts
 * are a prefix of the orders). */
static Py_ssize_t lookup(const Tables *self, const int64_t *tagged, int width)
{
    const int64_t *keys = self->keys.buf;
    Py_ssize_t where[MAX_KEYS];
    int found = 0;
    for (int k = 0; k < width; k++) {
        int64_t key = tagged[k];
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
    Py_ssize_t row = where[found > 0 ? found - 1 : width - 1];
    return row < self->n ? row : self->n - 1;
}

/* The short-term distribution (32,) over `size` symbols of the slots (the last the row never
 * counted) and its entropy in bits, as ShortTerm.probs and ppm.entropy: PPM-C interpolated,
 * the order -1 model uniform. */
static double short_probs(const Tables *self, const Py_ssize_t *slots, int count, int size,
                          double *p)
{
    const double *table = self->table.buf, *stats = self->stats.buf;
    double denominator[MAX_KEYS + 1], below[MAX_KEYS + 1];
    for (int j = 0; j < count; j++) {
        const double *st = stats + 2 * slots[j];
        denominator[j] = st[0] + st[1] + TINY;
        below[j] = (st[1] + TINY) / denominator[j];
    }
    /* Weight of order j: the escapes of every longer order (np.cumprod from the top). */
    for (int j = count - 2; j >= 0; j--)
        below[j] = below[j + 1] * below[j];
    for (int i = 0; i < WIDTH; i++)
        p[i] = 0.0;
    for (int j = 0; j < count - 1; j++) {
        double weight = below[j + 1] / denominator[j];
        const double *row = table + WIDTH * slots[j];
        for (int i = 0; i < WIDTH; i++)
            p[i] += weight * row[i];
    }
    double terms[WIDTH];
    for (int i = 0; i < WIDTH; i++) {
        if (i < size)
            p[i] += below[0] * (1.0 / size);
        terms[i] = p[i] > 0.0 ? p[i] * log2(p[i]) : 0.0;
    }
    return -numpy_sum(terms, WIDTH);
}

/* Memory.class_parts (stream 0) or Memory.length_parts(cls) (stream 1) into probs (models, 32)
 * and entropies (models,), the long-term model first. */
static void stream_parts(const Tables *self, const int64_t *history, int stream, long cls,
                         double *probs, double *entropies)
{
    int64_t keys[MAX_KEYS];
    Py_ssize_t slots[MAX_KEYS + 1];
    contexts(self, history, stream, cls, keys);
    int width = self->short_widths[stream], last = self->models - 1;
    slots_of(self, keys, width, slots);
    entropies[last] = short_probs(self, slots, width + 1, stream ? NUM_LENGTHS : NUM_CLASSES,
                                  probs + last * WIDTH);
    if (self->has_long) {
        Py_ssize_t row = lookup(self, keys, self->long_widths[stream]);
        memcpy(probs, (const double *)self->probs.buf + row * WIDTH, WIDTH * sizeof(double));
        entropies[0] = ((const double *)self->entropy.buf)[row];
    }
}

/* One draw of generate._draw_mixed: the LSTM's softmax mixed with the memory's distributions
 * (models, 32) by the gate of `head` (generate.mixed_probs), then argmax(log p + noise). */
static int draw_mixed(const Tables *self, int head, const double *logits, int size,
                      const double *probs, const double *entropies, const float *noise)
{
    double top = logits[0], exp_[WIDTH], shifted[WIDTH], dot = 0.0;
    for (int i = 1; i < size; i++)
        if (logits[i] > top)
            top = logits[i];
    for (int i = 0; i < size; i++) {
        shifted[i] = logits[i] - top;
        exp_[i] = exp(shifted[i]);
        dot += exp_[i] * shifted[i];
    }
    double total = numpy_sum(exp_, size);
    double scale = log2((double)size);
    double lstm_bits = (log(total) - dot / total) / log(2.0);
    const double *gain = self->gain[head], *bias = self->bias[head];
    double weights[MAX_MODELS + 1], whole;
    weights[0] = gain[0] * pow(fmax(lstm_bits / scale, 1e-6), -bias[0]);
    whole = weights[0];
    for (int m = 0; m < self->models; m++) {
        weights[m + 1] = gain[m + 1] * pow(fmax(entropies[m] / scale, 1e-6), -bias[m + 1]);
        whole += weights[m + 1];
    }
    double share[MAX_MODELS];
    for (int m = 0; m < self->models; m++)
        share[m] = weights[m + 1] / whole;
    double own = weights[0] / (whole * total);
    int best = 0;
    double best_value = -HUGE_VAL;
    for (int i = 0; i < size; i++) {
        double p = 0.0;
        for (int m = 0; m < self->models; m++)
            p += share[m] * probs[m * WIDTH + i];
        p += exp_[i] * own;
        double value = log(p) + (double)noise[i];
        if (value > best_value || i == 0) {
            best = i;
            best_value = value;
        }
    }
    return best;
}

static int read_class(PyObject *obj, long *cls)
{
    *cls = PyLong_AsLong(obj);
    if (*cls == -1 && PyErr_Occurred())
        return -1;
    if (*cls < 0 || *cls >= NUM_CLASSES) {
        PyErr_SetString(PyExc_ValueError, "class out of range");
        return -1;
    }
    return 0;
}

/* Tables.parts(now, stream, cls, probs, entropies): Memory.class_parts (stream 0, cls unread)
 * or Memory.length_parts(cls) (stream 1) into probs (models, 32) and entropies (models,). */
static PyObject *tables_parts(Tables *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "parts takes 5 arguments");
        return NULL;
    }
    int64_t history[2 * MAX_HISTORY];
    if (read_now(self, args[0], history) < 0)
        return NULL;
    long stream = PyLong_AsLong(args[1]), cls = 0;
    if (stream == -1 && PyErr_Occurred())
        return NULL;
    if (stream != 0 && stream != 1) {
        PyErr_SetString(PyExc_ValueError, "parts: stream is 0 (classes) or 1 (lengths)");
        return NULL;
    }
    if (stream == 1 && read_class(args[2], &cls) < 0)
        return NULL;
    Py_buffer v[2];
    int held = 0;
    if (take(args[3], &v[held], FLOAT64, self->models * WIDTH, 1, "probs", NULL) < 0)
        goto fail;
    held++;
    if (take(args[4], &v[held], FLOAT64, self->models, 1, "entropies", NULL) < 0)
        goto fail;
    held++;
    stream_parts(self, history, (int)stream, cls, v[0].buf, v[1].buf);
    release(v, held);
    Py_RETURN_NONE;
fail:
    release(v, held);
    return NULL;
}

/* Tables.gates(params): the gates `draw` mixes with, float64 (2, 2, models + 1): per head
 * (classes, lengths) the offsets then the biases, the LSTM first (gate.Gate). */
static PyObject *tables_gates(Tables *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "gates takes 1 argument");
        return NULL;
    }
    Py_buffer view;
    int per = self->models + 1;
    if (take(args[0], &view, FLOAT64, 4 * per, 0, "gates", NULL) < 0)
        return NULL;
    const double *params = view.buf;
    for (int i = 0; i < 4 * per; i++)
        if (!isfinite(params[i])) {
            PyErr_SetString(PyExc_ValueError, "gates: expected finite offsets and biases");
            PyBuffer_Release(&view);
            return NULL;
        }
    for (int head = 0; head < 2; head++)
        for (int m = 0; m < per; m++) {
            self->gain[head][m] = exp(params[head * 2 * per + m]);  /* math.exp(offset) */
            self->bias[head][m] = params[head * 2 * per + per + m];
        }
    self->gated = 1;
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

/* Tables.draw(now, heads, length_by_class, noise) -> (class, length class): the class parts,
 * the class drawn from their mix with the LSTM's class head, then the length parts for that
 * class and its length drawn, as generate._next_mixed draws them (top-p 1, arithmetic rule;
 * the noise carries the temperature). */
static PyObject *tables_draw(Tables *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "draw takes 4 arguments");
        return NULL;
    }
    if (!self->gated) {
        PyErr_SetString(PyExc_ValueError, "draw: no gates set (Tables.gates)");
        return NULL;
    }
    int64_t history[2 * MAX_HISTORY];
    if (read_now(self, args[0], history) < 0)
        return NULL;
    Py_buffer v[3];
    int held = 0;
    Py_ssize_t heads_size;
    if (take(args[1], &v[held], FLOAT32, -1, 0, "heads", &heads_size) < 0)
        goto fail;
    held++;
    if (heads_size < NUM_CLASSES + NUM_LENGTHS) {
        PyErr_SetString(PyExc_ValueError, "heads: too short");
        goto fail;
    }
    if (take(args[2], &v[held], FLOAT32, NUM_CLASSES * NUM_LENGTHS, 0, "length_by_class",
             NULL) < 0)
        goto fail;
    held++;
    if (take(args[3], &v[held], FLOAT32, NUM_CLASSES + NUM_LENGTHS, 0, "noise", NULL) < 0)
        goto fail;
    held++;
    const float *heads = v[0].buf, *by_class = v[1].buf, *noise = v[2].buf;
    double probs[MAX_MODELS * WIDTH], entropies[MAX_MODELS], logits[WIDTH];

    stream_parts(self, history, 0, 0, probs, entropies);
    for (int i = 0; i < NUM_CLASSES; i++)
        logits[i] = heads[i];
    int cls = draw_mixed(self, 0, logits, NUM_CLASSES, probs, entropies, noise);

    stream_parts(self, history, 1, cls, probs, entropies);
    /* The length head: its float32 sum with the class's row, as NumPy adds them. */
    for (int i = 0; i < NUM_LENGTHS; i++)
        logits[i] = (double)(float)(heads[NUM_CLASSES + i] + by_class[cls * NUM_LENGTHS + i]);
    int length = draw_mixed(self, 1, logits, NUM_LENGTHS, probs, entropies,
                            noise + NUM_CLASSES);
    release(v, held);
    return Py_BuildValue("ii", cls, length);
fail:
    release(v, held);
    return NULL;
}

/* Counts `token` after the contexts in slots[:width] (step 1) or takes it back (step -1), as
 * ShortTerm.add: a slot two contexts share (a hash collision) counts once, as one context. */
static void count_stream(Tables *self, const Py_ssize_t *slots, int width, long token, int step)
{
    double *table = self->table.buf, *stats = self->stats.buf;
    for (int j = 0; j < width; j++) {
        int seen = 0;
        for (int i = 0; i < j; i++)
            seen |= slots[i] == slots[j];
        if (seen)
            continue;
        Py_ssize_t slot = slots[j];
        double before = table[slot * WIDTH + token];
        table[slot * WIDTH + token] = before + step;
        stats[2 * slot] += step;
        stats[2 * slot + 1] += step > 0 ? (double)(before == 0.0) : -1.0 * (before == 1.0);
    }
}

/* Both streams' counts of one event at the position: the class, then its length (step 1), or
 * taken back in the reverse order (step -1), as Memory.add and Memory.restore. */
static void count_event(Tables *self, const int64_t *history, long cls, long length, int step)
{
    int64_t keys[2][MAX_KEYS];
    Py_ssize_t slots[2][MAX_KEYS + 1];
    for (int s = 0; s < 2; s++) {
        contexts(self, history, s, cls, keys[s]);
        slots_of(self, keys[s], self->short_widths[s], slots[s]);
    }
    if (step > 0) {
        count_stream(self, slots[0], self->short_widths[0], cls, 1);
        count_stream(self, slots[1], self->short_widths[1], length, 1);
    } else {
        count_stream(self, slots[1], self->short_widths[1], length, -1);
        count_stream(self, slots[0], self->short_widths[0], cls, -1);
    }
}

static int read_event(PyObject *const *args, long *cls, long *length)
{
    if (read_class(args[0], cls) < 0)
        return -1;
    *length = PyLong_AsLong(args[1]);
    if (*length == -1 && PyErr_Occurred())
        return -1;
    if (*length < 0 || *length >= NUM_LENGTHS) {
        PyErr_SetString(PyExc_ValueError, "length class out of range");
        return -1;
    }
    return 0;
}

/* Tables.add(now, class, length class) -> the next position: counts the event (as
 * Memory.add) and advances both histories past it (ppm.advance; linked lengths advance by the
 * (class, length) pair). */
static PyObject *tables_add(Tables *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "add takes 3 arguments");
        return NULL;
    }
    int64_t history[2 * MAX_HISTORY], next[2 * MAX_HISTORY];
    long cls, length;
    if (read_now(self, args[0], history) < 0 || read_event(args + 1, &cls, &length) < 0)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (self->sizes[0] + self->sizes[1]) * 8);
    if (!out)
        return NULL;
    count_event(self, history, cls, length, 1);
    const uint64_t base[2] = {BASE, self->link ? LINK_BASE : BASE};
    const uint64_t plus[2] = {(uint64_t)cls + 1,
                              (uint64_t)(self->link ? cls * NUM_LENGTHS + length : length) + 1};
    int64_t *from = history, *to = next;
    for (int s = 0; s < 2; s++) {
        to[0] = 0;
        for (int k = 1; k < self->sizes[s]; k++)
            to[k] = (int64_t)((uint64_t)from[k - 1] * base[s] + plus[s]);
        from += self->sizes[0];
        to += self->sizes[0];
    }
    memcpy(PyBytes_AS_STRING(out), next, (self->sizes[0] + self->sizes[1]) * 8);
    return out;
}

/* Tables.take_back(now, class, length class): the counts of an event added at `now`, taken
 * back (as Memory.restore). */
static PyObject *tables_take_back(Tables *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "take_back takes 3 arguments");
        return NULL;
    }
    int64_t history[2 * MAX_HISTORY];
    long cls, length;
    if (read_now(self, args[0], history) < 0 || read_event(args + 1, &cls, &length) < 0)
        return NULL;
    count_event(self, history, cls, length, -1);
    Py_RETURN_NONE;
}

static PyMethodDef tables_methods[] = {
    {"parts", (PyCFunction)(void (*)(void))tables_parts, METH_FASTCALL,
     "parts(now, stream, cls, probs, entropies): the memory's distributions of the next class"
     " (stream 0) or of its length given class cls (stream 1), and their entropies"},
    {"gates", (PyCFunction)(void (*)(void))tables_gates, METH_FASTCALL,
     "gates(params): the gates draw mixes with, (2, 2, models + 1) float64"},
    {"draw", (PyCFunction)(void (*)(void))tables_draw, METH_FASTCALL,
     "draw(now, heads, length_by_class, noise) -> (class, length class)"},
    {"add", (PyCFunction)(void (*)(void))tables_add, METH_FASTCALL,
     "add(now, class, length class) -> the next position: counts the event"},
    {"take_back", (PyCFunction)(void (*)(void))tables_take_back, METH_FASTCALL,
     "take_back(now, class, length class): the counts of the event added at now, taken back"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TablesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "synth.learn._ppmcore.Tables",
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
    .tp_name = "synth.learn._ppmcore.Cell",
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
    .m_doc = "The PPM memory's and the LSTM gates' per-step work in C (see synth/learn/memory.py and synth/learn/compiled.py).",
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

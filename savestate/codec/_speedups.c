/*
 * savestate.codec._speedups: native helpers for the compiled codec's hottest loop shapes.
 *
 * The generated Python code calls these when the extension is built (see accel.py); otherwise it
 * runs its own loops. Each helper accepts exactly what the generated Python loop accepts and
 * produces the same values and bytes. On anything else it raises the codec's Mismatch signal
 * (bound once by accel.py through bind()), and the front end re-runs the interpreting codec,
 * which reports the precise error with its field path: so both paths give the same errors too.
 *
 * Every read is bounds-checked against the record's end; no Python code runs while a borrowed
 * reference is held.
 *
 * Kinds ("mode" and "bits", fixed per field by the compiler from the wire plan):
 *   MODE_UNSIGNED  u8/u16/u32/uint32 (bits < 64: range-checked), u64/uint64
 *   MODE_SIGNED    int32 (range-checked) and int64: two's complement varints
 *   MODE_ZIGZAG    i8/i16/i32/sint32 (range-checked), i64/sint64
 *   MODE_BOOL      bool: any non-zero varint is true; only True/False are written
 *   MODE_ENUM      an IntEnum: decoded through its {number: member} dict, encoded from members
 *                  of exactly its class
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

enum { MODE_UNSIGNED = 0, MODE_SIGNED = 1, MODE_ZIGZAG = 2, MODE_BOOL = 3, MODE_ENUM = 4 };

/* The Mismatch exception class, set by bind(). */
static PyObject *mismatch = NULL;

static PyObject *
raise_mismatch(void)
{
    if (mismatch == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "savestate.codec._speedups: bind() was not called");
    }
    else {
        PyErr_SetNone(mismatch);
    }
    return NULL;
}

static PyObject *
speedups_bind(PyObject *self, PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls,
                                                (PyTypeObject *)PyExc_Exception)) {
        PyErr_SetString(PyExc_TypeError, "bind() takes an exception class");
        return NULL;
    }
    Py_INCREF(cls);
    Py_XSETREF(mismatch, cls);
    Py_RETURN_NONE;
}

/* A small int argument (a mode or a width); -1 with an error set otherwise. */
static int
small_int(PyObject *arg)
{
    long value = PyLong_AsLong(arg);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (value < 0 || value > 64) {
        PyErr_SetString(PyExc_ValueError, "unknown packed kind");
        return -1;
    }
    return (int)value;
}

static int
check_kind(int mode, int bits, PyObject *members)
{
    if (mode < MODE_UNSIGNED || mode > MODE_ENUM ||
        (bits != 8 && bits != 16 && bits != 32 && bits != 64)) {
        PyErr_SetString(PyExc_ValueError, "unknown packed kind");
        return -1;
    }
    if (mode == MODE_ENUM && members == NULL) {
        PyErr_SetString(PyExc_TypeError, "an enum kind needs its members");
        return -1;
    }
    return 0;
}

/*
 * Read one varint from [*p, end): at most 10 bytes and at most 64 bits, as the Python fast path
 * (runtime.varint_tail) accepts them, non-canonical forms included. Returns 0, or -1 when the
 * varint is too long, too large, or runs past end.
 */
static inline int
read_varint(const unsigned char **p, const unsigned char *end, uint64_t *out)
{
    const unsigned char *q = *p;
    uint64_t value = 0;
    int shift = 0;
    for (;;) {
        if (q >= end) {
            return -1;
        }
        unsigned int b = *q++;
        if (shift == 63 && b > 1) {
            return -1; /* an 11th byte, or bits past the 64th */
        }
        value |= (uint64_t)(b & 0x7F) << shift;
        if (b < 0x80) {
            break;
        }
        shift += 7;
    }
    *p = q;
    *out = value;
    return 0;
}

/* The Python value of one decoded varint, or NULL with Mismatch (or MemoryError) set. */
static inline PyObject *
decoded_value(uint64_t v, int mode, int bits, PyObject *members)
{
    int64_t s;
    switch (mode) {
    case MODE_UNSIGNED:
        if (bits < 64 && v > ((UINT64_C(1) << bits) - 1)) {
            return raise_mismatch();
        }
        return PyLong_FromUnsignedLongLong(v);
    case MODE_BOOL:
        return Py_NewRef(v ? Py_True : Py_False);
    case MODE_SIGNED:
        s = (int64_t)v;
        break;
    case MODE_ZIGZAG:
        s = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
        break;
    default: { /* MODE_ENUM */
        PyObject *key = PyLong_FromLongLong((int64_t)v);
        if (key == NULL) {
            return NULL;
        }
        PyObject *member = PyDict_GetItemWithError(members, key);
        Py_DECREF(key);
        if (member == NULL) {
            return PyErr_Occurred() ? NULL : raise_mismatch();
        }
        return Py_NewRef(member);
    }
    }
    if (bits < 64) {
        int64_t hi = (INT64_C(1) << (bits - 1)) - 1;
        if (s > hi || s < -hi - 1) {
            return raise_mismatch();
        }
    }
    return PyLong_FromLongLong(s);
}

/*
 * decode_packed(data, pos, end, out, mode, bits, members=None) -> end
 *
 * Append to the list ``out`` every value of the packed record data[pos:end]. A varint that runs
 * past ``end``, is too long, or a value out of range for the kind raises Mismatch.
 */
static PyObject *
speedups_decode_packed(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 && nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "decode_packed() takes 6 or 7 arguments");
        return NULL;
    }
    PyObject *data = args[0], *out = args[3];
    PyObject *members = (nargs == 7 && args[6] != Py_None) ? args[6] : NULL;
    if (!PyList_Check(out)) {
        PyErr_SetString(PyExc_TypeError, "decode_packed() appends to a list");
        return NULL;
    }
    if (members != NULL && !PyDict_Check(members)) {
        PyErr_SetString(PyExc_TypeError, "an enum's members are a dict");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t stop = PyLong_AsSsize_t(args[2]);
    if (stop == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int mode = small_int(args[4]);
    if (mode == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int bits = small_int(args[5]);
    if (bits == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (check_kind(mode, bits, members) < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    if (pos < 0 || stop < pos || stop > view.len) {
        raise_mismatch();
        goto done;
    }
    const unsigned char *p = (const unsigned char *)view.buf + pos;
    const unsigned char *end = (const unsigned char *)view.buf + stop;
    while (p < end) {
        uint64_t v;
        if (*p < 0x80) {
            v = *p++;
        }
        else if (read_varint(&p, end, &v) < 0) {
            raise_mismatch();
            goto done;
        }
        PyObject *item = decoded_value(v, mode, bits, members);
        if (item == NULL) {
            goto done;
        }
        int failed = PyList_Append(out, item);
        Py_DECREF(item);
        if (failed) {
            goto done;
        }
    }
    result = PyLong_FromSsize_t(stop);
done:
    PyBuffer_Release(&view);
    return result;
}

/*
 * The varint of one list element, as the generated encoder would write it; -1 with Mismatch
 * set for an element it would not accept. Exact ints only: an int subclass goes to the
 * interpreter, whose output is the reference.
 */
static inline int
element_varint(PyObject *x, int mode, int bits, PyObject *enum_cls, uint64_t *out)
{
    if (mode == MODE_BOOL) {
        if (x == Py_True) {
            *out = 1;
            return 0;
        }
        if (x == Py_False) {
            *out = 0;
            return 0;
        }
        raise_mismatch();
        return -1;
    }
    if (mode == MODE_ENUM) {
        if ((PyObject *)Py_TYPE(x) != enum_cls || !PyLong_Check(x)) {
            raise_mismatch();
            return -1;
        }
    }
    else if (!PyLong_CheckExact(x)) {
        raise_mismatch();
        return -1;
    }
    if (mode == MODE_UNSIGNED) {
        /* Negative values and those past 64 bits fail here (OverflowError). */
        unsigned long long u = PyLong_AsUnsignedLongLong(x);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            raise_mismatch();
            return -1;
        }
        if (bits < 64 && u > ((UINT64_C(1) << bits) - 1)) {
            raise_mismatch();
            return -1;
        }
        *out = (uint64_t)u;
        return 0;
    }
    int overflow = 0;
    long long s = PyLong_AsLongLongAndOverflow(x, &overflow);
    if (overflow || (s == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        raise_mismatch();
        return -1;
    }
    if (mode != MODE_ENUM && bits < 64) {
        long long hi = (1LL << (bits - 1)) - 1;
        if (s > hi || s < -hi - 1) {
            raise_mismatch();
            return -1;
        }
    }
    if (mode == MODE_ZIGZAG) {
        *out = ((uint64_t)s << 1) ^ (uint64_t)(s >> 63);
    }
    else {
        *out = (uint64_t)s; /* two's complement: a negative value takes 10 bytes */
    }
    return 0;
}

/*
 * encode_packed(buf, values, mode, bits, enum_cls=None) -> None
 *
 * Append the varint of every element of the list ``values`` to the bytearray ``buf`` (no tag,
 * no length). An element of the wrong type or out of range raises Mismatch; ``buf`` is then
 * left as it was.
 */
static PyObject *
speedups_encode_packed(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 && nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "encode_packed() takes 4 or 5 arguments");
        return NULL;
    }
    PyObject *buf = args[0], *values = args[1];
    PyObject *enum_cls = (nargs == 5 && args[4] != Py_None) ? args[4] : NULL;
    if (!PyByteArray_CheckExact(buf)) {
        PyErr_SetString(PyExc_TypeError, "encode_packed() appends to a bytearray");
        return NULL;
    }
    if (!PyList_Check(values)) {
        return raise_mismatch();
    }
    int mode = small_int(args[2]);
    if (mode == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int bits = small_int(args[3]);
    if (bits == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (check_kind(mode, bits, enum_cls) < 0) {
        return NULL;
    }
    Py_ssize_t start = PyByteArray_GET_SIZE(buf);
    Py_ssize_t count = PyList_GET_SIZE(values);
    if (count > (PY_SSIZE_T_MAX - start) / 10) {
        return PyErr_NoMemory();
    }
    /* Room for the longest form of every element, trimmed at the end. */
    if (PyByteArray_Resize(buf, start + count * 10) < 0) {
        return NULL;
    }
    unsigned char *base = (unsigned char *)PyByteArray_AS_STRING(buf);
    unsigned char *q = base + start;
    /* No Python code runs in this loop (exact ints, bools and enum members only; no __index__),
       so the list cannot change under it. */
    for (Py_ssize_t i = 0; i < count; i++) {
        uint64_t v;
        if (element_varint(PyList_GET_ITEM(values, i), mode, bits, enum_cls, &v) < 0) {
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            (void)PyByteArray_Resize(buf, start); /* shrinking cannot fail */
            PyErr_Restore(type, value, tb);
            return NULL;
        }
        while (v > 0x7F) {
            *q++ = (unsigned char)((v & 0x7F) | 0x80);
            v >>= 7;
        }
        *q++ = (unsigned char)v;
    }
    if (PyByteArray_Resize(buf, q - base) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* varint_tables() -> (middle, last): the varint bytes of every 14-bit value i, as a middle
   chunk (two bytes, both continued) and as the last chunk (one byte below 128, else two with
   the second not continued). The generated encoders write wide varints 14 bits at a time from
   these lists; building them here costs a fraction of building them in Python. */
static PyObject *
speedups_varint_tables(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    enum { CHUNKS = 1 << 14 };
    PyObject *middle = PyList_New(CHUNKS);
    PyObject *last = PyList_New(CHUNKS);
    if (middle == NULL || last == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < CHUNKS; i++) {
        char both[2] = {(char)((i & 0x7F) | 0x80), (char)((i >> 7) | 0x80)};
        char end[2] = {(char)(i < 0x80 ? i : (i & 0x7F) | 0x80), (char)(i >> 7)};
        PyObject *m = PyBytes_FromStringAndSize(both, 2);
        if (m == NULL) {
            goto error;
        }
        PyList_SET_ITEM(middle, i, m);
        PyObject *l = PyBytes_FromStringAndSize(end, i < 0x80 ? 1 : 2);
        if (l == NULL) {
            goto error;
        }
        PyList_SET_ITEM(last, i, l);
    }
    PyObject *result = PyTuple_Pack(2, middle, last);
    Py_DECREF(middle);
    Py_DECREF(last);
    return result;

error:
    /* A list's unset items are NULL, which its deallocator skips. */
    Py_XDECREF(middle);
    Py_XDECREF(last);
    return NULL;
}

static PyMethodDef speedups_methods[] = {
    {"bind", (PyCFunction)speedups_bind, METH_O,
     "bind(mismatch): the exception class the helpers raise for input they do not accept."},
    {"decode_packed", (PyCFunction)(void (*)(void))speedups_decode_packed, METH_FASTCALL,
     "decode_packed(data, pos, end, out, mode, bits, members=None) -> end\n\n"
     "Append the values of the packed varint record data[pos:end] to the list out."},
    {"encode_packed", (PyCFunction)(void (*)(void))speedups_encode_packed, METH_FASTCALL,
     "encode_packed(buf, values, mode, bits, enum_cls=None)\n\n"
     "Append the varints of the list values to the bytearray buf."},
    {"varint_tables", speedups_varint_tables, METH_NOARGS,
     "varint_tables() -> (middle, last)\n\n"
     "The varint bytes of every 14-bit value, as a middle chunk and as the last chunk."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "savestate.codec._speedups",
    "Native helpers for the compiled codec's packed varint loops.", -1, speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *m = PyModule_Create(&speedups_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "MODE_UNSIGNED", MODE_UNSIGNED) < 0 ||
        PyModule_AddIntConstant(m, "MODE_SIGNED", MODE_SIGNED) < 0 ||
        PyModule_AddIntConstant(m, "MODE_ZIGZAG", MODE_ZIGZAG) < 0 ||
        PyModule_AddIntConstant(m, "MODE_BOOL", MODE_BOOL) < 0 ||
        PyModule_AddIntConstant(m, "MODE_ENUM", MODE_ENUM) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

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
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { MODE_UNSIGNED = 0, MODE_SIGNED = 1, MODE_ZIGZAG = 2, MODE_BOOL = 3, MODE_ENUM = 4 };

/* The Mismatch exception class, set by bind(), and what the message helpers need (also set
   by bind(), which the module's users call first). */
static PyObject *mismatch = NULL;
static PyObject *pb_unknown_name = NULL; /* "_pb_unknown", interned */
static PyObject *empty_tuple = NULL;

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
    if (pb_unknown_name == NULL &&
        (pb_unknown_name = PyUnicode_InternFromString("_pb_unknown")) == NULL) {
        return NULL;
    }
    if (empty_tuple == NULL && (empty_tuple = PyTuple_New(0)) == NULL) {
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

/* ---------------------------------------------------------------------------------------------
 * Repeated messages whose fields are all plain numbers.
 *
 * The compiler passes the element's class and a layout of constants:
 *   layout = (cost, ((tag, kind, bits, attr), ...))
 * where kind is a MODE_* above (a varint; bits its width) or one of the fixed kinds below, and
 * attr the interned name of the field's slot. ``enums`` is a tuple with one entry per MODE_ENUM
 * field, in field order: its {number: member} dict to decode, its class to encode (else None).
 * Every field is singular, implicitly present, and absent means its zero (0, 0.0, False or the
 * enum's member 0): the compiler checks that before it emits a call.
 */

enum { KIND_FIXED32 = 5, KIND_SFIXED32 = 6, KIND_FIXED64 = 7, KIND_SFIXED64 = 8,
       KIND_FLOAT = 9, KIND_DOUBLE = 10, KIND_LAST = 10 };

#define MAX_FIELDS 12

typedef struct {
    uint64_t tag;
    int kind;
    int bits;
    PyObject *attr;   /* borrowed from the layout */
    PyObject *enum_;  /* borrowed from enums: the members dict or the class; NULL otherwise */
} field_spec;

typedef struct {
    Py_ssize_t cost;
    Py_ssize_t count;
    field_spec fields[MAX_FIELDS];
} message_spec;

static int
bad_layout(void)
{
    PyErr_SetString(PyExc_ValueError, "malformed message layout");
    return -1;
}

/* Parse (cost, fields) and enums into spec; -1 with ValueError/TypeError set when malformed.
   ``decoding``: enums hold members dicts, else classes. */
static int
parse_layout(PyObject *layout, PyObject *enums, int decoding, message_spec *spec)
{
    if (!PyTuple_Check(layout) || PyTuple_GET_SIZE(layout) != 2 ||
        !PyTuple_Check(PyTuple_GET_ITEM(layout, 1))) {
        return bad_layout();
    }
    spec->cost = PyLong_AsSsize_t(PyTuple_GET_ITEM(layout, 0));
    if (spec->cost == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (spec->cost < 0) {
        return bad_layout();
    }
    PyObject *fields = PyTuple_GET_ITEM(layout, 1);
    Py_ssize_t n = PyTuple_GET_SIZE(fields);
    if (n > MAX_FIELDS) {
        return bad_layout();
    }
    if (enums != Py_None && !PyTuple_Check(enums)) {
        return bad_layout();
    }
    Py_ssize_t enum_count = enums == Py_None ? 0 : PyTuple_GET_SIZE(enums), next_enum = 0;
    spec->count = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *f = PyTuple_GET_ITEM(fields, i);
        if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) != 4 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(f, 3))) {
            return bad_layout();
        }
        field_spec *fs = &spec->fields[i];
        unsigned long long tag = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(f, 0));
        if (tag == (unsigned long long)-1 && PyErr_Occurred()) {
            return -1;
        }
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(f, 1));
        long bits = PyLong_AsLong(PyTuple_GET_ITEM(f, 2));
        if (PyErr_Occurred()) {
            return -1;
        }
        if (kind < 0 || kind > KIND_LAST || (tag >> 3) == 0 || (tag >> 3) > 0x1FFFFFFF) {
            return bad_layout();
        }
        int wire = (int)(tag & 7);
        if (kind <= MODE_ENUM) {
            if (wire != 0 || (bits != 8 && bits != 16 && bits != 32 && bits != 64)) {
                return bad_layout();
            }
        }
        else if (wire != ((kind == KIND_FIXED32 || kind == KIND_SFIXED32 ||
                           kind == KIND_FLOAT) ? 5 : 1)) {
            return bad_layout();
        }
        for (Py_ssize_t j = 0; j < i; j++) {
            if ((spec->fields[j].tag >> 3) == (tag >> 3)) {
                return bad_layout();
            }
        }
        fs->tag = tag;
        fs->kind = (int)kind;
        fs->bits = (int)bits;
        fs->attr = PyTuple_GET_ITEM(f, 3);
        fs->enum_ = NULL;
        if (kind == MODE_ENUM) {
            if (next_enum >= enum_count) {
                return bad_layout();
            }
            fs->enum_ = PyTuple_GET_ITEM(enums, next_enum++);
            if (decoding ? !PyDict_Check(fs->enum_) : !PyType_Check(fs->enum_)) {
                PyErr_SetString(PyExc_TypeError,
                                "an enum field needs its members (decode) or class (encode)");
                return -1;
            }
        }
    }
    if (next_enum != enum_count) {
        return bad_layout();
    }
    return 0;
}

/* Whether object.__new__(cls) makes an instance: its first static base is object. */
static int
check_class(PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "a message class is a type");
        return -1;
    }
    PyTypeObject *base = (PyTypeObject *)cls;
    while (base != NULL && (base->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        base = base->tp_base;
    }
    if (base != &PyBaseObject_Type) {
        raise_mismatch();
        return -1;
    }
    return 0;
}

/* A growable byte buffer for an element's unknown records. */
typedef struct {
    unsigned char *data;
    Py_ssize_t len, cap;
} scratch;

static int
scratch_add(scratch *s, const unsigned char *p, Py_ssize_t n)
{
    if (n > PY_SSIZE_T_MAX / 2 - s->len) {
        PyErr_NoMemory();
        return -1;
    }
    if (s->len + n > s->cap) {
        Py_ssize_t cap = (s->len + n) * 2;
        unsigned char *grown = PyMem_Realloc(s->data, (size_t)cap);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, (size_t)n);
    s->len += n;
    return 0;
}

static inline uint32_t
load32(const unsigned char *q)
{
    return (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
}

static inline uint64_t
load64(const unsigned char *q)
{
    return (uint64_t)load32(q) | (uint64_t)load32(q + 4) << 32;
}

/* The zero of a field (its value when its record is absent); NULL with an error set. */
static PyObject *
field_zero(const field_spec *fs)
{
    switch (fs->kind) {
    case MODE_BOOL:
        return Py_NewRef(Py_False);
    case MODE_ENUM: {
        PyObject *key = PyLong_FromLong(0);
        if (key == NULL) {
            return NULL;
        }
        PyObject *member = PyDict_GetItemWithError(fs->enum_, key);
        Py_DECREF(key);
        if (member == NULL) {
            return PyErr_Occurred() ? NULL : raise_mismatch();
        }
        return Py_NewRef(member);
    }
    case KIND_FLOAT:
    case KIND_DOUBLE:
        return PyFloat_FromDouble(0.0);
    default:
        return PyLong_FromLong(0);
    }
}

/* Read one value of fs at [*p, end); NULL with Mismatch (or another error) set. */
static PyObject *
read_field(const field_spec *fs, const unsigned char **p, const unsigned char *end)
{
    const unsigned char *q = *p;
    PyObject *value;
    if (fs->kind <= MODE_ENUM) {
        uint64_t v;
        if (q < end && *q < 0x80) {
            v = *q++;
        }
        else if (read_varint(&q, end, &v) < 0) {
            return raise_mismatch();
        }
        value = decoded_value(v, fs->kind, fs->bits, (PyObject *)fs->enum_);
    }
    else {
        Py_ssize_t size = (fs->kind == KIND_FIXED32 || fs->kind == KIND_SFIXED32 ||
                           fs->kind == KIND_FLOAT) ? 4 : 8;
        if (end - q < size) {
            return raise_mismatch();
        }
        uint32_t u32;
        uint64_t u64;
        switch (fs->kind) {
        case KIND_FIXED32:
            u32 = load32(q);
            value = PyLong_FromUnsignedLong(u32);
            break;
        case KIND_SFIXED32:
            u32 = load32(q);
            value = PyLong_FromLong((int32_t)u32);
            break;
        case KIND_FIXED64:
            u64 = load64(q);
            value = PyLong_FromUnsignedLongLong(u64);
            break;
        case KIND_SFIXED64:
            u64 = load64(q);
            value = PyLong_FromLongLong((int64_t)u64);
            break;
        case KIND_FLOAT: {
            double d = PyFloat_Unpack4((const char *)q, 1);
            value = (d == -1.0 && PyErr_Occurred()) ? NULL : PyFloat_FromDouble(d);
            break;
        }
        default: {
            double d = PyFloat_Unpack8((const char *)q, 1);
            value = (d == -1.0 && PyErr_Occurred()) ? NULL : PyFloat_FromDouble(d);
            break;
        }
        }
        q += size;
    }
    *p = q;
    return value;
}

/* Skip the value of an unknown field (tag read) as runtime.skip_unknown does; -1 with
   Mismatch set for a known number, number 0, a bad wire type, or a value past end. */
static int
skip_unknown_field(const message_spec *spec, uint64_t tag, const unsigned char **p,
                   const unsigned char *end)
{
    uint64_t number = tag >> 3;
    int wire = (int)(tag & 7);
    if (number == 0 || number > 0x1FFFFFFF || wire == 3 || wire == 4 || wire > 5) {
        raise_mismatch();
        return -1;
    }
    for (Py_ssize_t i = 0; i < spec->count; i++) {
        if ((spec->fields[i].tag >> 3) == number) {
            raise_mismatch(); /* a known field with the wrong wire type */
            return -1;
        }
    }
    const unsigned char *q = *p;
    uint64_t v;
    if (wire == 0) {
        if (read_varint(&q, end, &v) < 0) {
            raise_mismatch();
            return -1;
        }
    }
    else if (wire == 2) {
        if (read_varint(&q, end, &v) < 0 || v > (uint64_t)(end - q)) {
            raise_mismatch();
            return -1;
        }
        q += v;
    }
    else {
        Py_ssize_t size = wire == 1 ? 8 : 4;
        if (end - q < size) {
            raise_mismatch();
            return -1;
        }
        q += size;
    }
    *p = q;
    return 0;
}

/* Build one element from values[] (NULL: the field's zero; references are stolen) and the
   unknown bytes; NULL with an error set. */
static PyObject *
build_element(PyObject *cls, const message_spec *spec, PyObject **values, const scratch *unknown)
{
    PyObject *obj = PyBaseObject_Type.tp_new((PyTypeObject *)cls, empty_tuple, NULL);
    Py_ssize_t i = 0;
    if (obj == NULL) {
        goto error;
    }
    for (; i < spec->count; i++) {
        PyObject *v = values[i];
        values[i] = NULL;
        if (v == NULL && (v = field_zero(&spec->fields[i])) == NULL) {
            i++;
            goto error;
        }
        int failed = PyObject_SetAttr(obj, spec->fields[i].attr, v);
        Py_DECREF(v);
        if (failed) {
            i++;
            goto error;
        }
    }
    PyObject *rest = unknown->len
        ? PyBytes_FromStringAndSize((const char *)unknown->data, unknown->len)
        : Py_NewRef(Py_None);
    if (rest == NULL) {
        goto error;
    }
    int failed = PyObject_SetAttr(obj, pb_unknown_name, rest);
    Py_DECREF(rest);
    if (failed) {
        goto error;
    }
    return obj;
error:
    for (; i < spec->count; i++) {
        Py_CLEAR(values[i]);
    }
    Py_XDECREF(obj);
    return NULL;
}

/*
 * decode_messages(data, pos, end, out, depth, budget, cls, layout, enums, tag) -> pos
 *
 * ``pos`` is just after a record tagged ``tag`` (a repeated field of messages of ``cls``).
 * Decode that element and every one that follows it directly with the same tag, appending
 * them to the list ``out``; return the position after the last (a tag of something else, or
 * ``end``). Per element, as the generated code: ``depth <= 1`` refuses it, ``budget[0]`` is
 * charged the layout's cost (below zero refuses), the last value of a field wins and unknown
 * fields are kept, in order, as ``_pb_unknown``. Anything refused raises Mismatch.
 */
static PyObject *
speedups_decode_messages(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "decode_messages() takes 10 arguments");
        return NULL;
    }
    PyObject *data = args[0], *out = args[3], *budget = args[5], *cls = args[6];
    if (!PyList_Check(out) || !PyList_Check(budget)) {
        PyErr_SetString(PyExc_TypeError, "decode_messages() appends to a list, with a budget list");
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
    long depth = PyLong_AsLong(args[4]);
    if (depth == -1 && PyErr_Occurred()) {
        return NULL;
    }
    unsigned long long list_tag = PyLong_AsUnsignedLongLong(args[9]);
    if (list_tag == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    message_spec spec;
    if (parse_layout(args[7], args[8], 1, &spec) < 0 || check_class(cls) < 0) {
        return NULL;
    }
    if (depth <= 1) {
        return raise_mismatch();
    }
    if (PyList_GET_SIZE(budget) != 1 || !PyLong_CheckExact(PyList_GET_ITEM(budget, 0))) {
        return raise_mismatch();
    }
    int overflow = 0;
    long long left = PyLong_AsLongLongAndOverflow(PyList_GET_ITEM(budget, 0), &overflow);
    if (overflow || (left == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return raise_mismatch();
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    PyObject *values[MAX_FIELDS] = {NULL};
    scratch unknown = {NULL, 0, 0};
    if (pos < 0 || stop < pos || stop > view.len) {
        raise_mismatch();
        goto done;
    }
    const unsigned char *base = (const unsigned char *)view.buf;
    const unsigned char *p = base + pos, *end = base + stop;
    for (;;) {
        uint64_t len;
        if (read_varint(&p, end, &len) < 0 || len > (uint64_t)(end - p)) {
            raise_mismatch();
            goto done;
        }
        const unsigned char *elem_end = p + len;
        left -= spec.cost;
        if (left < 0) {
            raise_mismatch();
            goto done;
        }
        unknown.len = 0;
        while (p < elem_end) {
            const unsigned char *tag_start = p;
            uint64_t tag;
            if (*p < 0x80) {
                tag = *p++;
            }
            else if (read_varint(&p, elem_end, &tag) < 0) {
                raise_mismatch();
                goto done;
            }
            Py_ssize_t i = 0;
            while (i < spec.count && spec.fields[i].tag != tag) {
                i++;
            }
            if (i < spec.count) {
                PyObject *v = read_field(&spec.fields[i], &p, elem_end);
                if (v == NULL) {
                    goto done;
                }
                Py_XSETREF(values[i], v); /* the last value wins */
            }
            else if (skip_unknown_field(&spec, tag, &p, elem_end) < 0 ||
                     scratch_add(&unknown, tag_start, p - tag_start) < 0) {
                goto done;
            }
        }
        PyObject *obj = build_element(cls, &spec, values, &unknown);
        if (obj == NULL) {
            goto done;
        }
        int failed = PyList_Append(out, obj);
        Py_DECREF(obj);
        if (failed) {
            goto done;
        }
        /* The next record: another element, or something for the caller. */
        const unsigned char *q = p;
        uint64_t next;
        if (q >= end || read_varint(&q, end, &next) < 0 || next != list_tag) {
            break;
        }
        p = q;
    }
    result = PyLong_FromSsize_t(p - base);
done:
    for (Py_ssize_t i = 0; i < MAX_FIELDS; i++) {
        Py_XDECREF(values[i]);
    }
    PyMem_Free(unknown.data);
    PyBuffer_Release(&view);
    {
        /* What was charged, charged in the caller's budget too (as the generated code does). */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *charged = PyLong_FromLongLong(left);
        if (charged == NULL || PyList_SetItem(budget, 0, charged) < 0) {
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            Py_XDECREF(result);
            return NULL;
        }
        PyErr_Restore(type, value, tb);
    }
    return result;
}

/* A bytearray being appended to: the room is grown as needed and trimmed at the end. */
typedef struct {
    PyObject *buf;
    Py_ssize_t used;
} out_buf;

static unsigned char *
room(out_buf *o, Py_ssize_t need)
{
    Py_ssize_t size = PyByteArray_GET_SIZE(o->buf);
    if (need > PY_SSIZE_T_MAX / 2 - o->used) {
        PyErr_NoMemory();
        return NULL;
    }
    if (o->used + need > size) {
        Py_ssize_t grown = (o->used + need) * 2;
        if (PyByteArray_Resize(o->buf, grown) < 0) {
            return NULL;
        }
    }
    return (unsigned char *)PyByteArray_AS_STRING(o->buf) + o->used;
}

static inline unsigned char *
put_varint(unsigned char *q, uint64_t v)
{
    while (v > 0x7F) {
        *q++ = (unsigned char)((v & 0x7F) | 0x80);
        v >>= 7;
    }
    *q++ = (unsigned char)v;
    return q;
}

/* Append field fs of value x to q as the generated encoder writes it (nothing for its zero);
   NULL with Mismatch set for a value it would not accept without help (the interpreter then
   decides). q has room for a tag and ten bytes. */
static unsigned char *
put_field(unsigned char *q, const field_spec *fs, PyObject *x)
{
    int kind = fs->kind;
    uint64_t v;
    if (kind == KIND_FLOAT || kind == KIND_DOUBLE) {
        if (!PyFloat_CheckExact(x)) {
            raise_mismatch();
            return NULL;
        }
        double d = PyFloat_AS_DOUBLE(x);
        if (d == 0.0 && !signbit(d)) {
            return q;
        }
        q = put_varint(q, fs->tag);
        if ((kind == KIND_FLOAT ? PyFloat_Pack4(d, (char *)q, 1)
                                : PyFloat_Pack8(d, (char *)q, 1)) < 0) {
            PyErr_Clear(); /* too large for a float: the interpreter says so */
            raise_mismatch();
            return NULL;
        }
        return q + (kind == KIND_FLOAT ? 4 : 8);
    }
    if (kind <= MODE_ENUM) {
        if (element_varint(x, kind, fs->bits, fs->enum_, &v) < 0) {
            return NULL;
        }
        if (v == 0) {
            return q;
        }
        q = put_varint(q, fs->tag);
        return put_varint(q, v);
    }
    /* fixed kinds: exact ints in range */
    int is_signed = kind == KIND_SFIXED32 || kind == KIND_SFIXED64;
    int bits = (kind == KIND_FIXED32 || kind == KIND_SFIXED32) ? 32 : 64;
    if (element_varint(x, is_signed ? MODE_SIGNED : MODE_UNSIGNED, bits, NULL, &v) < 0) {
        return NULL;
    }
    if (v == 0) {
        return q;
    }
    q = put_varint(q, fs->tag);
    for (int i = 0; i < bits / 8; i++) {
        *q++ = (unsigned char)(v >> (8 * i));
    }
    return q;
}

/*
 * encode_messages(buf, items, depth, tag, cls, layout, enums) -> None
 *
 * Append every element of the list ``items`` (each exactly of class ``cls``) to the bytearray
 * ``buf`` as a record tagged by the bytes ``tag``: its fields that are not zero, in layout
 * order, then its ``_pb_unknown`` bytes. ``depth <= 1`` refuses an element. Anything refused
 * raises Mismatch and leaves ``buf`` as it was.
 */
static PyObject *
speedups_encode_messages(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "encode_messages() takes 7 arguments");
        return NULL;
    }
    PyObject *buf = args[0], *items = args[1], *tag = args[3], *cls = args[4];
    if (!PyByteArray_CheckExact(buf) || !PyBytes_CheckExact(tag) ||
        PyBytes_GET_SIZE(tag) > 10) {
        PyErr_SetString(PyExc_TypeError, "encode_messages() appends to a bytearray");
        return NULL;
    }
    if (!PyList_Check(items)) {
        return raise_mismatch();
    }
    long depth = PyLong_AsLong(args[2]);
    if (depth == -1 && PyErr_Occurred()) {
        return NULL;
    }
    message_spec spec;
    if (parse_layout(args[5], args[6], 0, &spec) < 0) {
        return NULL;
    }
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "a message class is a type");
        return NULL;
    }
    Py_ssize_t start = PyByteArray_GET_SIZE(buf);
    out_buf o = {buf, start};
    PyObject *values[MAX_FIELDS + 1] = {NULL};
    Py_ssize_t tag_len = PyBytes_GET_SIZE(tag);
    const char *tag_bytes = PyBytes_AS_STRING(tag);
    /* The items are read again on every turn: reading an attribute could run code that
       changes the list (it cannot for a declared class, but nothing here relies on that). */
    for (Py_ssize_t n = 0; n < PyList_GET_SIZE(items); n++) {
        PyObject *item = Py_NewRef(PyList_GET_ITEM(items, n));
        if ((PyObject *)Py_TYPE(item) != cls || depth <= 1) {
            Py_DECREF(item);
            raise_mismatch();
            goto error;
        }
        int failed = 0;
        for (Py_ssize_t i = 0; i < spec.count && !failed; i++) {
            values[i] = PyObject_GetAttr(item, spec.fields[i].attr);
            failed = values[i] == NULL;
        }
        if (!failed) {
            values[spec.count] = PyObject_GetAttr(item, pb_unknown_name);
            failed = values[spec.count] == NULL;
        }
        Py_DECREF(item);
        if (failed) {
            goto error;
        }
        PyObject *rest = values[spec.count];
        Py_ssize_t rest_len = 0;
        if (PyBytes_CheckExact(rest)) {
            rest_len = PyBytes_GET_SIZE(rest);
        }
        else if (rest != Py_None) {
            raise_mismatch(); /* bytes or None only: anything else is the interpreter's */
            goto error;
        }
        /* The fields first, into room for their longest forms after the tag and a length
           of up to ten bytes; then moved down to sit after the length actually needed. */
        Py_ssize_t longest = 20 + 15 * spec.count;
        if (rest_len > PY_SSIZE_T_MAX / 2 - longest) {
            PyErr_NoMemory();
            goto error;
        }
        unsigned char *at = room(&o, longest + rest_len);
        if (at == NULL) {
            goto error;
        }
        unsigned char *body = at + tag_len + 10, *q = body;
        for (Py_ssize_t i = 0; i < spec.count; i++) {
            q = put_field(q, &spec.fields[i], values[i]);
            if (q == NULL) {
                goto error;
            }
        }
        Py_ssize_t known = q - body;
        uint64_t size = (uint64_t)known + (uint64_t)rest_len;
        memcpy(at, tag_bytes, (size_t)tag_len);
        unsigned char *len_end = put_varint(at + tag_len, size);
        memmove(len_end, body, (size_t)known);
        if (rest_len) {
            memcpy(len_end + known, PyBytes_AS_STRING(rest), (size_t)rest_len);
        }
        o.used = (len_end + known + rest_len) - (unsigned char *)PyByteArray_AS_STRING(buf);
        for (Py_ssize_t i = 0; i <= spec.count; i++) {
            Py_CLEAR(values[i]);
        }
    }
    if (PyByteArray_Resize(buf, o.used) < 0) {
        goto error;
    }
    Py_RETURN_NONE;
error:
    for (Py_ssize_t i = 0; i <= MAX_FIELDS; i++) {
        Py_XDECREF(values[i]);
    }
    {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        (void)PyByteArray_Resize(buf, start); /* shrinking cannot fail */
        PyErr_Restore(type, value, tb);
    }
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
    {"decode_messages", (PyCFunction)(void (*)(void))speedups_decode_messages, METH_FASTCALL,
     "decode_messages(data, pos, end, out, depth, budget, cls, layout, enums, tag) -> pos\n\n"
     "Decode the elements of a repeated field of all-number messages, from the record after\n"
     "its tag at pos to the first record of something else, appending them to out."},
    {"encode_messages", (PyCFunction)(void (*)(void))speedups_encode_messages, METH_FASTCALL,
     "encode_messages(buf, items, depth, tag, cls, layout, enums)\n\n"
     "Append every element of a list of all-number messages to buf, each tagged by tag."},
    {"varint_tables", speedups_varint_tables, METH_NOARGS,
     "varint_tables() -> (middle, last)\n\n"
     "The varint bytes of every 14-bit value, as a middle chunk and as the last chunk."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "savestate.codec._speedups",
    "Native helpers for the compiled codec's packed varint and all-number message loops.", -1, speedups_methods,
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
        PyModule_AddIntConstant(m, "MODE_ENUM", MODE_ENUM) < 0 ||
        PyModule_AddIntConstant(m, "KIND_FIXED32", KIND_FIXED32) < 0 ||
        PyModule_AddIntConstant(m, "KIND_SFIXED32", KIND_SFIXED32) < 0 ||
        PyModule_AddIntConstant(m, "KIND_FIXED64", KIND_FIXED64) < 0 ||
        PyModule_AddIntConstant(m, "KIND_SFIXED64", KIND_SFIXED64) < 0 ||
        PyModule_AddIntConstant(m, "KIND_FLOAT", KIND_FLOAT) < 0 ||
        PyModule_AddIntConstant(m, "KIND_DOUBLE", KIND_DOUBLE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

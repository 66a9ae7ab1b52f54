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

/* What Python 3.10 spells differently, or only privately, under the names 3.11 gave it. */
#if PY_VERSION_HEX < 0x030B0000
#  if defined(_MSC_VER)
#    define Py_NO_INLINE __declspec(noinline)
#  else
#    define Py_NO_INLINE __attribute__((noinline))
#  endif
#  define PyFloat_Pack4(x, p, le) _PyFloat_Pack4((x), (unsigned char *)(p), (le))
#  define PyFloat_Pack8(x, p, le) _PyFloat_Pack8((x), (unsigned char *)(p), (le))
#  define PyFloat_Unpack4(p, le) _PyFloat_Unpack4((const unsigned char *)(p), (le))
#  define PyFloat_Unpack8(p, le) _PyFloat_Unpack8((const unsigned char *)(p), (le))
#endif

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
 * encode_packed(buf, values, mode, bits, enum_cls=None, members=None) -> None
 *
 * Append the varint of every element of the list ``values`` to the bytearray ``buf`` (no tag,
 * no length). An element of the wrong type or out of range raises Mismatch; ``buf`` is then
 * left as it was. An enum's element is one of its ``members`` ({number: member}): a value of
 * its class made up by other means (``int.__new__``) is refused, as the generated loop refuses
 * it, and its number is not written.
 */
static PyObject *
speedups_encode_packed(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 && nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "encode_packed() takes 4 or 6 arguments");
        return NULL;
    }
    PyObject *buf = args[0], *values = args[1];
    PyObject *enum_cls = (nargs == 6 && args[4] != Py_None) ? args[4] : NULL;
    PyObject *members = (nargs == 6 && args[5] != Py_None) ? args[5] : NULL;
    if ((enum_cls == NULL) != (members == NULL) ||
        (members != NULL && !PyDict_Check(members))) {
        PyErr_SetString(PyExc_TypeError, "an enum's class goes with its members, a dict");
        return NULL;
    }
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
    /* No Python code runs in this loop (exact ints, bools and enum members only; no __index__;
       the members' keys are ints), so the list cannot change under it. */
    for (Py_ssize_t i = 0; i < count; i++) {
        uint64_t v;
        PyObject *x = PyList_GET_ITEM(values, i);
        int failed = element_varint(x, mode, bits, enum_cls, &v) < 0;
        if (!failed && mode == MODE_ENUM) {
            PyObject *number = PyLong_FromLongLong((long long)v);
            PyObject *member = number == NULL ? NULL
                                              : PyDict_GetItemWithError(members, number);
            Py_XDECREF(number);
            if (member != x) {
                failed = 1;
                if (!PyErr_Occurred()) {
                    raise_mismatch();
                }
            }
        }
        if (failed) {
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
 * Shared by the tables below: the fixed-width kinds, and small readers and writers.
 */

enum { KIND_FIXED32 = 5, KIND_SFIXED32 = 6, KIND_FIXED64 = 7, KIND_SFIXED64 = 8,
       KIND_FLOAT = 9, KIND_DOUBLE = 10 };

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

/* Read one value of a fixed-width kind at [*p, end); NULL with Mismatch (or another error) set.
   Kept out of line: inlined, it slows the varint path of its caller. */
Py_NO_INLINE static PyObject *
read_fixed(int kind, const unsigned char **p, const unsigned char *end)
{
    const unsigned char *q = *p;
    Py_ssize_t size = (kind == KIND_FIXED32 || kind == KIND_SFIXED32 || kind == KIND_FLOAT) ? 4 : 8;
    if (end - q < size) {
        return raise_mismatch();
    }
    PyObject *value;
    switch (kind) {
    case KIND_FIXED32:
        value = PyLong_FromUnsignedLong(load32(q));
        break;
    case KIND_SFIXED32:
        value = PyLong_FromLong((int32_t)load32(q));
        break;
    case KIND_FIXED64:
        value = PyLong_FromUnsignedLongLong(load64(q));
        break;
    case KIND_SFIXED64:
        value = PyLong_FromLongLong((int64_t)load64(q));
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
    *p = q + size;
    return value;
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

/* ---------------------------------------------------------------------------------------------
 * Whole messages: a Layout is the table of one message plan (savestate.codec.native builds it
 * from the wire plan), and Layout.encode / Layout.decode write and read a whole value with it,
 * nested messages included. They take on what the generated code takes on without help, give
 * the same bytes and build the same objects; on anything else they raise Mismatch and the
 * front end runs the generated code (then, if that refuses too, the interpreter), so the
 * errors are the same as without them.
 *
 * A layout's fields, each a tuple
 *   (number, kind, bits, container, presence, absent, length, where, zero, members, enum_cls,
 *    sub, py_encode, py_decode, cls)
 * where kind is a MODE_* or KIND_* above, KIND_STRING, KIND_BYTES, KIND_MESSAGE (``sub`` is
 * the nested message's Layout) or KIND_CALL (the nested message is written and read by the
 * generated functions ``py_encode`` and ``py_decode``; ``cls``, when not None, is the class the
 * value must be exactly); ``where`` is the slot's name (a struct) or the item's index (a map
 * entry, a tuple); ``cls`` of a Oneof's field is the variant class it stands for. ``length``
 * is the size of a fixed-size bytes value, or the count of a fixed array (a list, in a wrapper
 * message whose only field is the list), else -1. A layout's form: a struct (an object of its
 * class), a Oneof (an object of one of its variants' classes), a map's entry or a tuple (a
 * tuple of the fields in order), or a wrapper (the value of its only field).
 * ---------------------------------------------------------------------------------------------
 */

#include "structmember.h"

enum { KIND_STRING = 11, KIND_BYTES = 12, KIND_MESSAGE = 13, KIND_CALL = 14 };
enum { CONTAINER_NONE = 0, CONTAINER_LIST = 1, CONTAINER_DICT = 2 };
enum { PRESENCE_IMPLICIT = 0, PRESENCE_EXPLICIT = 1, PRESENCE_ALWAYS = 2 };
enum { ABSENT_ZERO = 0, ABSENT_NONE = 1, ABSENT_LIST = 2, ABSENT_DICT = 3, ABSENT_MESSAGE = 4,
       ABSENT_REQUIRED = 5 };
enum { FORM_STRUCT = 0, FORM_ONEOF = 1, FORM_ENTRY = 2, FORM_TUPLE = 3, FORM_WRAPPER = 4 };

#define LOOKUP_SIZE 64

struct layout_object;

typedef struct {
    uint32_t number;
    int kind, bits, container, presence, absent;
    int wire;               /* of one value */
    int packed;             /* a list of numbers, written as one packed record */
    Py_ssize_t length;      /* a fixed-size bytes value: its size; else -1 */
    Py_ssize_t offset;      /* a struct's slot: its offset in the object; an entry's item index */
    unsigned char tag[5], len_tag[5];
    int tag_len, len_tag_len;
    PyObject *zero, *members, *enum_cls, *py_encode, *py_decode, *cls;
    struct layout_object *sub;
} layout_field;

typedef struct layout_object {
    PyObject_HEAD
    int filled;
    int form;
    PyObject *cls;          /* a struct's class */
    long long cost;         /* charged to the memory budget per value decoded */
    Py_ssize_t unknown_offset;
    Py_ssize_t count;
    layout_field *fields;
    unsigned char lookup[LOOKUP_SIZE]; /* field number -> index + 1 (0: none, or look further) */
} layout_object;

static PyTypeObject layout_type;

static int
layout_traverse(layout_object *self, visitproc visit, void *arg)
{
    Py_VISIT(self->cls);
    for (Py_ssize_t i = 0; i < self->count; i++) {
        layout_field *f = &self->fields[i];
        Py_VISIT(f->zero);
        Py_VISIT(f->members);
        Py_VISIT(f->enum_cls);
        Py_VISIT(f->py_encode);
        Py_VISIT(f->py_decode);
        Py_VISIT(f->cls);
        Py_VISIT((PyObject *)f->sub);
    }
    return 0;
}

static int
layout_clear(layout_object *self)
{
    Py_CLEAR(self->cls);
    for (Py_ssize_t i = 0; i < self->count; i++) {
        layout_field *f = &self->fields[i];
        Py_CLEAR(f->zero);
        Py_CLEAR(f->members);
        Py_CLEAR(f->enum_cls);
        Py_CLEAR(f->py_encode);
        Py_CLEAR(f->py_decode);
        Py_CLEAR(f->cls);
        Py_CLEAR(f->sub);
    }
    self->filled = 0; /* a cleared layout refuses everything */
    return 0;
}

static void
layout_dealloc(layout_object *self)
{
    PyObject_GC_UnTrack(self);
    layout_clear(self);
    PyMem_Free(self->fields);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The offset of the slot ``name`` of instances of ``cls``, or -1 with TypeError set when it is
   not a plain object slot (a member descriptor of ``cls`` or a base). */
static Py_ssize_t
slot_offset(PyTypeObject *cls, PyObject *name)
{
    PyObject *descr = _PyType_Lookup(cls, name); /* borrowed */
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "%R is not a slot of the class", name);
        return -1;
    }
    PyMemberDescrObject *member = (PyMemberDescrObject *)descr;
    if (member->d_member->type != T_OBJECT_EX || !PyType_IsSubtype(cls, PyDescr_TYPE(member))) {
        PyErr_Format(PyExc_TypeError, "%R is not an object slot of the class", name);
        return -1;
    }
    return member->d_member->offset;
}

static int
put_tag(unsigned char *q, uint64_t tag)
{
    int n = 0;
    while (tag > 0x7F) {
        q[n++] = (unsigned char)((tag & 0x7F) | 0x80);
        tag >>= 7;
    }
    q[n++] = (unsigned char)tag;
    return n;
}

static int
wire_of(int kind)
{
    if (kind <= MODE_ENUM) {
        return 0;
    }
    if (kind == KIND_FIXED32 || kind == KIND_SFIXED32 || kind == KIND_FLOAT) {
        return 5;
    }
    if (kind <= KIND_DOUBLE) {
        return 1;
    }
    return 2;
}

static PyObject *
layout_malformed(const char *what)
{
    PyErr_Format(PyExc_ValueError, "malformed layout: %s", what);
    return NULL;
}

/* Fill one field from its tuple; NULL with an error set when it is malformed. */
static PyObject *
fill_field(layout_object *self, layout_field *f, PyObject *t)
{
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 15) {
        return layout_malformed("a field is a tuple of 15");
    }
    long v[7];
    for (int i = 0; i < 7; i++) {
        v[i] = PyLong_AsLong(PyTuple_GET_ITEM(t, i));
        if (v[i] == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (v[0] < 1 || v[0] > 0x1FFFFFFF) {
        return layout_malformed("field number");
    }
    f->number = (uint32_t)v[0];
    f->kind = (int)v[1];
    f->bits = (int)v[2];
    f->container = (int)v[3];
    f->presence = (int)v[4];
    f->absent = (int)v[5];
    f->length = v[6];
    if (f->kind < 0 || f->kind > KIND_CALL || f->container < CONTAINER_NONE ||
        f->container > CONTAINER_DICT || f->presence < PRESENCE_IMPLICIT ||
        f->presence > PRESENCE_ALWAYS || f->absent < ABSENT_ZERO ||
        f->absent > ABSENT_REQUIRED || f->length < -1) {
        return layout_malformed("field kind");
    }
    if (f->kind <= MODE_ENUM && f->bits != 8 && f->bits != 16 && f->bits != 32 &&
        f->bits != 64) {
        return layout_malformed("varint width");
    }
    if (f->length >= 0 && (f->container != CONTAINER_NONE ||
                           (f->kind != KIND_BYTES && f->kind != KIND_MESSAGE &&
                            f->kind != KIND_CALL))) {
        return layout_malformed("only bytes and fixed arrays have a size");
    }
    f->wire = wire_of(f->kind);
    f->packed = f->container == CONTAINER_LIST && f->wire != 2;
    if (f->container != CONTAINER_NONE && f->presence != PRESENCE_IMPLICIT) {
        return layout_malformed("a list or a map is written when not empty");
    }
    f->tag_len = put_tag(f->tag, ((uint64_t)f->number << 3) | (uint64_t)f->wire);
    f->len_tag_len = put_tag(f->len_tag, ((uint64_t)f->number << 3) | 2);
    PyObject *where = PyTuple_GET_ITEM(t, 7);
    if (self->form == FORM_STRUCT) {
        if (!PyUnicode_Check(where)) {
            return layout_malformed("a struct's field names its slot");
        }
        f->offset = slot_offset((PyTypeObject *)self->cls, where);
        if (f->offset < 0) {
            return NULL;
        }
    }
    else if (self->form == FORM_ENTRY || self->form == FORM_TUPLE) {
        f->offset = PyLong_AsSsize_t(where);
        if (f->offset == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    PyObject *zero = PyTuple_GET_ITEM(t, 8), *members = PyTuple_GET_ITEM(t, 9);
    PyObject *enum_cls = PyTuple_GET_ITEM(t, 10), *sub = PyTuple_GET_ITEM(t, 11);
    PyObject *py_encode = PyTuple_GET_ITEM(t, 12), *py_decode = PyTuple_GET_ITEM(t, 13);
    PyObject *cls = PyTuple_GET_ITEM(t, 14);
    if (f->kind == MODE_ENUM) {
        if (!PyDict_Check(members) || !PyType_Check(enum_cls)) {
            return layout_malformed("an enum field has its members and class");
        }
        f->members = Py_NewRef(members);
        f->enum_cls = Py_NewRef(enum_cls);
    }
    if (f->kind == KIND_MESSAGE) {
        /* A nested layout may still be empty (a recursive message): it is filled later, and
           refuses everything until then. A map's entry is filled first. */
        if (!Py_IS_TYPE(sub, &layout_type)) {
            return layout_malformed("a message field has its layout");
        }
        f->sub = (layout_object *)Py_NewRef(sub);
        int entry = f->sub->filled && f->sub->form == FORM_ENTRY;
        if (entry != (f->container == CONTAINER_DICT)) {
            return layout_malformed("a map field, and only a map field, has an entry's layout");
        }
    }
    else if (f->container == CONTAINER_DICT) {
        return layout_malformed("a map field has its entry's layout");
    }
    if (f->kind == KIND_CALL) {
        if (!PyCallable_Check(py_encode) || !PyCallable_Check(py_decode)) {
            return layout_malformed("a called message has its functions");
        }
        f->py_encode = Py_NewRef(py_encode);
        f->py_decode = Py_NewRef(py_decode);
    }
    if (cls != Py_None) {
        if (!PyType_Check(cls)) {
            return layout_malformed("a class");
        }
        f->cls = Py_NewRef(cls);
    }
    if (self->form == FORM_ONEOF && (f->cls == NULL || f->presence != PRESENCE_ALWAYS ||
                                     f->container != CONTAINER_NONE ||
                                     (f->kind != KIND_MESSAGE && f->kind != KIND_CALL))) {
        return layout_malformed("a Oneof's field is a message of its variant's class");
    }
    if (f->absent == ABSENT_ZERO) {
        f->zero = Py_NewRef(zero);
    }
    if (f->absent == ABSENT_MESSAGE && f->kind != KIND_MESSAGE && f->kind != KIND_CALL) {
        return layout_malformed("only a message is absent as an empty message");
    }
    return Py_None;
}

/* Layout.fill(form, cls, cost, fields): set what an empty layout holds (once). */
static PyObject *
layout_fill(layout_object *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "fill() takes 4 arguments");
        return NULL;
    }
    if (self->fields != NULL || self->cls != NULL || self->filled) {
        PyErr_SetString(PyExc_ValueError, "a layout is filled once");
        return NULL;
    }
    if (pb_unknown_name == NULL) {
        return raise_mismatch(); /* bind() first: it says so */
    }
    long form = PyLong_AsLong(args[0]);
    if (form == -1 && PyErr_Occurred()) {
        return NULL;
    }
    long long cost = PyLong_AsLongLong(args[2]);
    if (cost == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *cls = args[1], *fields = args[3];
    if (form < FORM_STRUCT || form > FORM_WRAPPER || cost < 0 || !PyTuple_Check(fields)) {
        return layout_malformed("form, cost or fields");
    }
    Py_ssize_t count = PyTuple_GET_SIZE(fields);
    if (form == FORM_STRUCT) {
        if (!PyType_Check(cls) || check_class(cls) < 0) {
            PyErr_Clear();
            return layout_malformed("a struct's class is made by object.__new__");
        }
        PyTypeObject *type = (PyTypeObject *)cls;
        if (type->tp_getattro != PyObject_GenericGetAttr ||
            type->tp_setattro != PyObject_GenericSetAttr) {
            return layout_malformed("a struct's class has its own attribute access");
        }
    }
    else if (cls != Py_None || (form == FORM_ENTRY && count != 2) ||
             (form == FORM_ONEOF && count == 0) || (form == FORM_WRAPPER && count != 1)) {
        return layout_malformed("a Oneof, an entry, a tuple or a wrapper");
    }
    self->form = (int)form;
    self->cost = cost;
    if (form == FORM_STRUCT) {
        self->cls = Py_NewRef(cls);
        self->unknown_offset = slot_offset((PyTypeObject *)cls, pb_unknown_name);
        if (self->unknown_offset < 0) {
            return NULL;
        }
    }
    self->fields = PyMem_Calloc(count ? (size_t)count : 1, sizeof(layout_field));
    if (self->fields == NULL) {
        return PyErr_NoMemory();
    }
    memset(self->lookup, 0, sizeof self->lookup);
    for (Py_ssize_t i = 0; i < count; i++) {
        self->count = i + 1; /* so that clearing sees what was filled */
        layout_field *f = &self->fields[i];
        if (fill_field(self, f, PyTuple_GET_ITEM(fields, i)) == NULL) {
            return NULL;
        }
        for (Py_ssize_t j = 0; j < i; j++) {
            if (self->fields[j].number == f->number) {
                return layout_malformed("two fields of one number");
            }
        }
        if ((form == FORM_ENTRY || form == FORM_TUPLE) && f->offset != i) {
            return layout_malformed("an entry's or a tuple's fields are its items in order");
        }
        if (f->number < LOOKUP_SIZE && i < 255) {
            self->lookup[f->number] = (unsigned char)(i + 1);
        }
    }
    self->count = count;
    self->filled = 1;
    Py_RETURN_NONE;
}

/* The index of the field numbered ``number``, or -1. */
static inline Py_ssize_t
find_field(const layout_object *self, uint64_t number)
{
    if (number < LOOKUP_SIZE) {
        Py_ssize_t i = (Py_ssize_t)self->lookup[number] - 1;
        if (i >= 0 || self->count < 255) {
            return i;
        }
    }
    for (Py_ssize_t i = 0; i < self->count; i++) {
        if (self->fields[i].number == number) {
            return i;
        }
    }
    return -1;
}

/* -- encoding --------------------------------------------------------------------------------*/

/* The output of an encode. It starts in a plain buffer of at most SPARE_LIMIT bytes, copied
   into the result's bytes at the end (and kept for the next encode); an output that outgrows it
   (the buffer doubles, so from half of SPARE_LIMIT on) moves once into a bytes object of its
   own (``big``), which becomes the result, cut to its length, so that a large payload is
   copied once and the output is not held twice. */
typedef struct {
    unsigned char *data;
    Py_ssize_t len, cap;
    PyObject *big;
} wbuf;

#define SPARE_LIMIT (1 << 20)

/* Room for ``need`` more bytes; NULL with MemoryError set. */
static inline unsigned char *
wroom(wbuf *w, Py_ssize_t need)
{
    if (w->cap - w->len >= need) {
        return w->data + w->len;
    }
    if (need > PY_SSIZE_T_MAX / 4 - w->len) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t want = w->len + need;
    Py_ssize_t cap = want < 128 ? 256 : want * 2;
    int large = cap > SPARE_LIMIT;
    if (large) {
        /* Large buffers are grown by an eighth: a large realloc remaps pages rather than copy
           them, and the slack stays small beside the payload. */
        cap = want + want / 8;
    }
    if (w->big != NULL) {
        /* On failure the bytes object is released and big set to NULL. */
        if (_PyBytes_Resize(&w->big, cap) < 0) {
            w->data = NULL;
            w->len = w->cap = 0;
            return NULL;
        }
        w->data = (unsigned char *)PyBytes_AS_STRING(w->big);
    }
    else if (large) {
        PyObject *big = PyBytes_FromStringAndSize(NULL, cap);
        if (big == NULL) {
            return NULL;
        }
        if (w->len > 0) {
            memcpy(PyBytes_AS_STRING(big), w->data, (size_t)w->len);
        }
        PyMem_Free(w->data);
        w->big = big;
        w->data = (unsigned char *)PyBytes_AS_STRING(big);
    }
    else {
        unsigned char *grown = PyMem_Realloc(w->data, (size_t)cap);
        if (grown == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        w->data = grown;
    }
    w->cap = cap;
    return w->data + w->len;
}

static inline int
wput(wbuf *w, const void *p, Py_ssize_t n)
{
    if (n == 0) {
        return 0; /* nothing to copy, and perhaps no buffer yet */
    }
    unsigned char *q = wroom(w, n);
    if (q == NULL) {
        return -1;
    }
    memcpy(q, p, (size_t)n);
    w->len += n;
    return 0;
}

static inline int
wvarint(wbuf *w, uint64_t v)
{
    unsigned char *q = wroom(w, 10);
    if (q == NULL) {
        return -1;
    }
    w->len = put_varint(q, v) - w->data;
    return 0;
}

/* Put the length of the body that starts at ``body`` (one byte was kept for it) in front of
   it, moving the body when the length takes more than one byte. */
static int
close_len(wbuf *w, Py_ssize_t body)
{
    uint64_t size = (uint64_t)(w->len - body);
    if (size < 0x80) {
        w->data[body - 1] = (unsigned char)size;
        return 0;
    }
    unsigned char len[10];
    int n = (int)(put_varint(len, size) - len);
    if (wroom(w, n - 1) == NULL) {
        return -1;
    }
    memmove(w->data + body + n - 1, w->data + body, (size_t)size);
    memcpy(w->data + body - 1, len, (size_t)n);
    w->len += n - 1;
    return 0;
}

static int encode_body(layout_object *layout, PyObject *obj, long depth, wbuf *w);

/* The UTF-8 of an exact str (``*keep`` a bytes object to release after, or NULL); NULL with
   Mismatch set for a str that has none (a lone surrogate) or another type. */
static const char *
utf8_of(PyObject *x, Py_ssize_t *size, PyObject **keep)
{
    *keep = NULL;
    if (!PyUnicode_CheckExact(x)) {
        raise_mismatch();
        return NULL;
    }
    if (PyUnicode_IS_COMPACT_ASCII(x)) {
        *size = PyUnicode_GET_LENGTH(x);
        return (const char *)PyUnicode_DATA(x);
    }
    *keep = PyUnicode_AsUTF8String(x);
    if (*keep == NULL) {
        PyErr_Clear();
        raise_mismatch();
        return NULL;
    }
    *size = PyBytes_GET_SIZE(*keep);
    return PyBytes_AS_STRING(*keep);
}

/* Write a nested message's body with the generated function ``fn``, through a bytearray. */
static int
encode_called(PyObject *fn, PyObject *x, long depth, wbuf *w)
{
    PyObject *buf = PyByteArray_FromStringAndSize(NULL, 0);
    if (buf == NULL) {
        return -1;
    }
    PyObject *d = PyLong_FromLong(depth);
    if (d == NULL) {
        Py_DECREF(buf);
        return -1;
    }
    PyObject *res = PyObject_CallFunctionObjArgs(fn, x, buf, d, NULL);
    Py_DECREF(d);
    int failed = res == NULL;
    Py_XDECREF(res);
    if (!failed) {
        failed = wput(w, PyByteArray_AS_STRING(buf), PyByteArray_GET_SIZE(buf));
    }
    Py_DECREF(buf);
    return failed ? -1 : 0;
}

/* Write one value of field f (with its tag, unless ``bare``: an element of a packed record).
   A zero is skipped unless ``always``. -1 with Mismatch (or another error) set. */
static int
encode_value(const layout_field *f, PyObject *x, int always, int bare, long depth, wbuf *w)
{
    int kind = f->kind;
    unsigned char *q;
    if (kind <= MODE_ENUM) {
        uint64_t v;
        if (element_varint(x, kind, f->bits, f->enum_cls, &v) < 0) {
            return -1;
        }
        if (kind == MODE_ENUM) {
            /* One of the plan's members, not a value an open enum made up. */
            PyObject *number = PyLong_FromLongLong((long long)v);
            if (number == NULL) {
                return -1;
            }
            PyObject *member = PyDict_GetItemWithError(f->members, number);
            Py_DECREF(number);
            if (member != x) {
                if (!PyErr_Occurred()) {
                    raise_mismatch();
                }
                return -1;
            }
        }
        if (v == 0 && !always) {
            return 0;
        }
        if ((q = wroom(w, 15)) == NULL) {
            return -1;
        }
        if (!bare) {
            memcpy(q, f->tag, (size_t)f->tag_len);
            q += f->tag_len;
        }
        w->len = put_varint(q, v) - w->data;
        return 0;
    }
    if (kind == KIND_FLOAT || kind == KIND_DOUBLE) {
        if (!PyFloat_CheckExact(x)) {
            raise_mismatch();
            return -1;
        }
        double d = PyFloat_AS_DOUBLE(x);
        if (d == 0.0 && !signbit(d) && !always) {
            return 0;
        }
        if ((q = wroom(w, 13)) == NULL) {
            return -1;
        }
        if (!bare) {
            memcpy(q, f->tag, (size_t)f->tag_len);
            q += f->tag_len;
        }
        if ((kind == KIND_FLOAT ? PyFloat_Pack4(d, (char *)q, 1)
                                : PyFloat_Pack8(d, (char *)q, 1)) < 0) {
            PyErr_Clear(); /* too large for a float: the generated code decides */
            raise_mismatch();
            return -1;
        }
        w->len = (q + (kind == KIND_FLOAT ? 4 : 8)) - w->data;
        return 0;
    }
    if (kind <= KIND_DOUBLE) { /* fixed-width integers */
        int is_signed = kind == KIND_SFIXED32 || kind == KIND_SFIXED64;
        int size = (kind == KIND_FIXED32 || kind == KIND_SFIXED32) ? 4 : 8;
        uint64_t v;
        if (element_varint(x, is_signed ? MODE_SIGNED : MODE_UNSIGNED, size * 8, NULL, &v) < 0) {
            return -1;
        }
        if (v == 0 && !always) {
            return 0;
        }
        if ((q = wroom(w, 13)) == NULL) {
            return -1;
        }
        if (!bare) {
            memcpy(q, f->tag, (size_t)f->tag_len);
            q += f->tag_len;
        }
        for (int i = 0; i < size; i++) {
            *q++ = (unsigned char)(v >> (8 * i));
        }
        w->len = q - w->data;
        return 0;
    }
    if (kind == KIND_STRING || kind == KIND_BYTES) {
        const char *s;
        Py_ssize_t n;
        PyObject *keep = NULL;
        if (kind == KIND_STRING) {
            if ((s = utf8_of(x, &n, &keep)) == NULL) {
                return -1;
            }
        }
        else {
            if (!PyBytes_CheckExact(x) || (f->length >= 0 && PyBytes_GET_SIZE(x) != f->length)) {
                raise_mismatch();
                return -1;
            }
            s = PyBytes_AS_STRING(x);
            n = PyBytes_GET_SIZE(x);
        }
        int failed = 0;
        if (n || always) {
            failed = (q = wroom(w, 15)) == NULL;
            if (!failed) {
                memcpy(q, f->tag, (size_t)f->tag_len);
                w->len = put_varint(q + f->tag_len, (uint64_t)n) - w->data;
                failed = wput(w, s, n);
            }
        }
        Py_XDECREF(keep);
        return failed ? -1 : 0;
    }
    /* A nested message: the tag, a byte for the length, the body, then the length. */
    if ((f->cls != NULL && (PyObject *)Py_TYPE(x) != f->cls) ||
        (f->length >= 0 && (!PyList_CheckExact(x) || PyList_GET_SIZE(x) != f->length))) {
        raise_mismatch();
        return -1;
    }
    Py_ssize_t start = w->len;
    if (wput(w, f->tag, f->tag_len) < 0 || wput(w, "", 1) < 0) {
        return -1;
    }
    Py_ssize_t body = w->len;
    if ((kind == KIND_MESSAGE ? encode_body(f->sub, x, depth - 1, w)
                              : encode_called(f->py_encode, x, depth - 1, w)) < 0) {
        return -1;
    }
    if (w->len == body && !always) {
        w->len = start; /* an empty message is not written */
        return 0;
    }
    return close_len(w, body);
}

/* Write field f whose value is x. */
static int
encode_field(const layout_field *f, PyObject *x, long depth, wbuf *w)
{
    if (f->container == CONTAINER_NONE) {
        if (f->presence == PRESENCE_EXPLICIT && x == Py_None) {
            return 0;
        }
        return encode_value(f, x, f->presence != PRESENCE_IMPLICIT, 0, depth, w);
    }
    if (f->container == CONTAINER_LIST) {
        if (!PyList_CheckExact(x)) {
            raise_mismatch();
            return -1;
        }
        if (PyList_GET_SIZE(x) == 0) {
            return 0;
        }
        if (f->packed) {
            /* No Python code runs while the elements are written (exact types only). */
            if (wput(w, f->len_tag, f->len_tag_len) < 0 || wput(w, "", 1) < 0) {
                return -1;
            }
            Py_ssize_t body = w->len;
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(x); i++) {
                if (encode_value(f, PyList_GET_ITEM(x, i), 1, 1, depth, w) < 0) {
                    return -1;
                }
            }
            return close_len(w, body);
        }
        /* A called element's code could change the list: it is read again on every turn. */
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(x); i++) {
            PyObject *item = Py_NewRef(PyList_GET_ITEM(x, i));
            int failed = encode_value(f, item, 1, 0, depth, w);
            Py_DECREF(item);
            if (failed) {
                return -1;
            }
        }
        return 0;
    }
    /* A map: one entry message per item, its key and value written as an entry's fields. */
    if (!PyDict_CheckExact(x)) {
        raise_mismatch();
        return -1;
    }
    layout_object *entry = f->sub;
    if (!entry->filled) {
        raise_mismatch(); /* cleared by the collector: nothing to write with */
        return -1;
    }
    Py_ssize_t pos = 0, size = PyDict_GET_SIZE(x), seen = 0;
    PyObject *key, *value;
    while (PyDict_Next(x, &pos, &key, &value)) {
        /* More entries than the map had: a key was swapped for another while written, which
           PyDict_Next does not see (a dict's own iterator does). */
        if (depth <= 1 || ++seen > size) {
            raise_mismatch();
            return -1;
        }
        Py_INCREF(key);
        Py_INCREF(value);
        int failed = wput(w, f->tag, f->tag_len) < 0 || wput(w, "", 1) < 0;
        Py_ssize_t body = w->len;
        failed = failed || encode_field(&entry->fields[0], key, depth - 1, w) < 0 ||
                 encode_field(&entry->fields[1], value, depth - 1, w) < 0 ||
                 close_len(w, body) < 0;
        Py_DECREF(key);
        Py_DECREF(value);
        if (failed) {
            return -1;
        }
        if (PyDict_GET_SIZE(x) != size) {
            raise_mismatch(); /* changed while written: the generated code decides */
            return -1;
        }
    }
    return 0;
}

/* Write the fields of obj, a value of the layout's message, at depth ``depth``. */
static int
encode_body(layout_object *layout, PyObject *obj, long depth, wbuf *w)
{
    if (depth <= 0 || !layout->filled) {
        raise_mismatch();
        return -1;
    }
    if (Py_EnterRecursiveCall(" while encoding a message")) {
        return -1;
    }
    int failed = 0;
    if (layout->form == FORM_ONEOF) {
        Py_ssize_t i = 0;
        while (i < layout->count && (PyObject *)Py_TYPE(obj) != layout->fields[i].cls) {
            i++;
        }
        failed = i == layout->count ? (raise_mismatch(), -1)
                                    : encode_value(&layout->fields[i], obj, 1, 0, depth, w);
        Py_LeaveRecursiveCall();
        return failed;
    }
    if (layout->form == FORM_WRAPPER) {
        failed = encode_field(&layout->fields[0], obj, depth, w);
        Py_LeaveRecursiveCall();
        return failed;
    }
    if (layout->form == FORM_TUPLE) {
        /* A tuple cannot change: its items are held while it is. */
        if (!PyTuple_CheckExact(obj) || PyTuple_GET_SIZE(obj) != layout->count) {
            failed = (raise_mismatch(), -1);
        }
        for (Py_ssize_t i = 0; i < layout->count && !failed; i++) {
            failed = encode_field(&layout->fields[i], PyTuple_GET_ITEM(obj, i), depth, w);
        }
        Py_LeaveRecursiveCall();
        return failed;
    }
    if ((PyObject *)Py_TYPE(obj) != layout->cls) {
        Py_LeaveRecursiveCall();
        raise_mismatch();
        return -1;
    }
    for (Py_ssize_t i = 0; i < layout->count && !failed; i++) {
        const layout_field *f = &layout->fields[i];
        PyObject *x = *(PyObject **)((char *)obj + f->offset);
        if (x == NULL) {
            failed = (raise_mismatch(), -1); /* an unset slot: the generated code decides */
            break;
        }
        Py_INCREF(x); /* a called message's code could replace the slot */
        failed = encode_field(f, x, depth, w);
        Py_DECREF(x);
    }
    if (!failed) {
        PyObject *rest = *(PyObject **)((char *)obj + layout->unknown_offset);
        if (rest != NULL && PyBytes_CheckExact(rest)) {
            failed = wput(w, PyBytes_AS_STRING(rest), PyBytes_GET_SIZE(rest));
        }
        else if (rest != Py_None) {
            failed = (raise_mismatch(), -1);
        }
    }
    Py_LeaveRecursiveCall();
    return failed;
}

/* The buffer of the last encode, kept for the next one up to this size: a save encodes many
   messages of similar sizes, and growing a new buffer each time copies it several times. (A
   nested encode, through a called message's code, finds it taken and makes its own.) It is
   taken and given back with the GIL held, as every use of the module's static state. */
static wbuf spare = {NULL, 0, 0, NULL};

/* Layout.encode(obj, depth) -> bytes: the encoding of a whole value. */
static PyObject *
layout_encode(layout_object *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "encode() takes 2 arguments");
        return NULL;
    }
    long depth = PyLong_AsLong(args[1]);
    if (depth == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (self->form != FORM_STRUCT && self->form != FORM_ONEOF) {
        return raise_mismatch(); /* a declared class's layouts only */
    }
    wbuf w = spare;
    spare.data = NULL;
    spare.cap = 0;
    w.len = 0;
    int failed = encode_body(self, args[0], depth, &w) < 0;
    if (w.big != NULL) {
        PyObject *result = w.big;
        if (failed) {
            Py_DECREF(result);
            return NULL;
        }
        /* Cutting a large allocation shrinks it where it is. */
        if (_PyBytes_Resize(&result, w.len) < 0) {
            return NULL;
        }
        return result;
    }
    PyObject *result = NULL;
    if (!failed) {
        result = PyBytes_FromStringAndSize((const char *)w.data, w.len);
    }
    if (spare.data == NULL) {
        spare = w;
    }
    else {
        PyMem_Free(w.data);
    }
    return result;
}

/* -- decoding --------------------------------------------------------------------------------*/

typedef struct {
    PyObject *data;             /* the bytes being read */
    const unsigned char *base;
    long long budget;           /* what the objects may still cost */
} reader;

static PyObject *decode_body(layout_object *layout, reader *r, const unsigned char *p,
                             const unsigned char *end, long depth);

/* Read a length and return the end of the value it bounds; NULL with Mismatch set. */
static inline const unsigned char *
read_len(const unsigned char **p, const unsigned char *end)
{
    uint64_t n;
    const unsigned char *q = *p;
    if (q < end && *q < 0x80) {
        n = *q++;
    }
    else if (read_varint(&q, end, &n) < 0) {
        raise_mismatch();
        return NULL;
    }
    if (n > (uint64_t)(end - q)) {
        raise_mismatch();
        return NULL;
    }
    *p = q;
    return q + n;
}

/* A nested message read by the generated function ``fn``, from [p, end). */
static PyObject *
decode_called(PyObject *fn, reader *r, const unsigned char *p, const unsigned char *end,
              long depth)
{
    PyObject *budget = Py_BuildValue("[L]", r->budget);
    if (budget == NULL) {
        return NULL;
    }
    PyObject *value = PyObject_CallFunction(fn, "OnnlO", r->data, (Py_ssize_t)(p - r->base),
                                            (Py_ssize_t)(end - r->base), depth, budget);
    if (value != NULL) {
        PyObject *left = PyList_GET_SIZE(budget) == 1 ? PyList_GET_ITEM(budget, 0) : NULL;
        int overflow = 0;
        long long n = left != NULL && PyLong_CheckExact(left)
                          ? PyLong_AsLongLongAndOverflow(left, &overflow) : -1;
        if (n < 0 || overflow) {
            PyErr_Clear();
            Py_CLEAR(value);
            raise_mismatch();
        }
        else {
            r->budget = n;
        }
    }
    Py_DECREF(budget);
    return value;
}

/* Read one value of field f at *p (its tag read); NULL with Mismatch (or another error) set. */
static PyObject *
decode_value(const layout_field *f, reader *r, const unsigned char **p, const unsigned char *end,
             long depth)
{
    int kind = f->kind;
    if (kind <= MODE_ENUM) {
        uint64_t v;
        const unsigned char *q = *p;
        if (q < end && *q < 0x80) {
            v = *q++;
        }
        else if (read_varint(&q, end, &v) < 0) {
            return raise_mismatch();
        }
        *p = q;
        return decoded_value(v, kind, f->bits, f->members);
    }
    if (kind <= KIND_DOUBLE) {
        return read_fixed(kind, p, end);
    }
    const unsigned char *value_end = read_len(p, end);
    if (value_end == NULL) {
        return NULL;
    }
    const unsigned char *q = *p;
    *p = value_end;
    Py_ssize_t n = value_end - q;
    if (kind == KIND_STRING) {
        PyObject *s = PyUnicode_DecodeUTF8((const char *)q, n, NULL);
        if (s == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            raise_mismatch();
        }
        return s;
    }
    if (kind == KIND_BYTES) {
        if (f->length >= 0 && n != f->length) {
            return raise_mismatch();
        }
        return PyBytes_FromStringAndSize((const char *)q, n);
    }
    PyObject *value = kind == KIND_MESSAGE ? decode_body(f->sub, r, q, value_end, depth - 1)
                                           : decode_called(f->py_decode, r, q, value_end,
                                                           depth - 1);
    if (value != NULL && f->length >= 0 &&
        (!PyList_CheckExact(value) || PyList_GET_SIZE(value) != f->length)) {
        Py_DECREF(value);
        return raise_mismatch(); /* a fixed array of another count */
    }
    return value;
}

/* What field f decodes to when its record is absent. */
static PyObject *
absent_value(const layout_field *f, reader *r, long depth)
{
    switch (f->absent) {
    case ABSENT_ZERO:
        return Py_NewRef(f->zero);
    case ABSENT_NONE:
        return Py_NewRef(Py_None);
    case ABSENT_LIST:
        return PyList_New(0);
    case ABSENT_DICT:
        return PyDict_New();
    case ABSENT_MESSAGE:
        if (f->kind == KIND_MESSAGE) {
            return decode_body(f->sub, r, r->base, r->base, depth - 1);
        }
        return decode_called(f->py_decode, r, r->base, r->base, depth - 1);
    default:
        return raise_mismatch();
    }
}

/* Skip an unknown record's value (its tag read); -1 with Mismatch set where
   runtime.skip_unknown refuses. */
static int
skip_record(uint64_t tag, const unsigned char **p, const unsigned char *end)
{
    uint64_t number = tag >> 3;
    int wire = (int)(tag & 7);
    if (number == 0 || number > 0x1FFFFFFF || wire == 3 || wire == 4 || wire > 5) {
        raise_mismatch();
        return -1;
    }
    if (wire == 0) {
        uint64_t v;
        if (read_varint(p, end, &v) < 0) {
            raise_mismatch();
            return -1;
        }
        return 0;
    }
    if (wire == 2) {
        const unsigned char *value_end = read_len(p, end);
        if (value_end == NULL) {
            return -1;
        }
        *p = value_end;
        return 0;
    }
    Py_ssize_t size = wire == 1 ? 8 : 4;
    if (end - *p < size) {
        raise_mismatch();
        return -1;
    }
    *p += size;
    return 0;
}

/* Read the records of one field into *slot (a list or dict made on first use, or the last
   value). ``wire`` is the record's wire type. */
static int
decode_record(const layout_field *f, int wire, reader *r, const unsigned char **p,
              const unsigned char *end, long depth, PyObject **slot)
{
    if (f->container == CONTAINER_NONE) {
        if (*slot != NULL && (f->kind == KIND_MESSAGE || f->kind == KIND_CALL)) {
            raise_mismatch(); /* a message's records merge: the generated code does that */
            return -1;
        }
        PyObject *v = decode_value(f, r, p, end, depth);
        if (v == NULL) {
            return -1;
        }
        Py_XSETREF(*slot, v); /* the last value wins */
        return 0;
    }
    if (*slot == NULL) {
        *slot = f->container == CONTAINER_LIST ? PyList_New(0) : PyDict_New();
        if (*slot == NULL) {
            return -1;
        }
    }
    if (f->container == CONTAINER_DICT) {
        const unsigned char *entry_end = read_len(p, end);
        if (entry_end == NULL) {
            return -1;
        }
        PyObject *kv = decode_body(f->sub, r, *p, entry_end, depth - 1);
        *p = entry_end;
        if (kv == NULL) {
            return -1;
        }
        int failed = PyDict_SetItem(*slot, PyTuple_GET_ITEM(kv, 0), PyTuple_GET_ITEM(kv, 1));
        Py_DECREF(kv);
        return failed;
    }
    if (f->packed && wire == 2) {
        const unsigned char *packed_end = read_len(p, end);
        if (packed_end == NULL) {
            return -1;
        }
        while (*p < packed_end) {
            PyObject *v = decode_value(f, r, p, packed_end, depth);
            if (v == NULL) {
                return -1;
            }
            int failed = PyList_Append(*slot, v);
            Py_DECREF(v);
            if (failed) {
                return -1;
            }
        }
        return 0;
    }
    PyObject *v = decode_value(f, r, p, end, depth);
    if (v == NULL) {
        return -1;
    }
    int failed = PyList_Append(*slot, v);
    Py_DECREF(v);
    return failed;
}

#define MAX_STACK_FIELDS 32

/* The value of the layout's message read from [p, end), at depth ``depth``. */
static PyObject *
decode_body(layout_object *layout, reader *r, const unsigned char *p, const unsigned char *end,
            long depth)
{
    if (depth <= 0 || !layout->filled) {
        return raise_mismatch();
    }
    if (layout->cost) {
        r->budget -= layout->cost;
        if (r->budget < 0) {
            return raise_mismatch();
        }
    }
    Py_ssize_t count = layout->count;
    PyObject *stack[MAX_STACK_FIELDS];
    PyObject **values = count <= MAX_STACK_FIELDS ? stack : PyMem_Calloc((size_t)count,
                                                                         sizeof(PyObject *));
    PyObject *result = NULL;
    scratch unknown = {NULL, 0, 0};
    if (values == NULL) {
        PyErr_NoMemory();
        goto done_unentered;
    }
    if (values == stack) {
        memset(stack, 0, sizeof(PyObject *) * (size_t)count);
    }
    if (Py_EnterRecursiveCall(" while decoding a message")) {
        goto done_unentered;
    }
    Py_ssize_t chosen = -1; /* a Oneof's variant */
    while (p < end) {
        const unsigned char *record = p;
        uint64_t tag;
        if (*p < 0x80) {
            tag = *p++;
        }
        else if (read_varint(&p, end, &tag) < 0) {
            raise_mismatch();
            goto done;
        }
        Py_ssize_t i = find_field(layout, tag >> 3);
        int wire = (int)(tag & 7);
        if (i >= 0) {
            const layout_field *f = &layout->fields[i];
            if (wire != f->wire && !(wire == 2 && f->packed)) {
                raise_mismatch(); /* a known field with another wire type */
                goto done;
            }
            if (layout->form == FORM_ONEOF) {
                if (chosen >= 0) {
                    raise_mismatch(); /* records of a Oneof merge or replace: not here */
                    goto done;
                }
                chosen = i;
            }
            if (decode_record(f, wire, r, &p, end, depth, &values[i]) < 0) {
                goto done;
            }
        }
        else if (layout->form != FORM_STRUCT) {
            raise_mismatch(); /* a Oneof or an entry has nowhere to keep it */
            goto done;
        }
        else if (skip_record(tag, &p, end) < 0 || scratch_add(&unknown, record, p - record) < 0) {
            goto done;
        }
    }
    if (layout->form == FORM_ONEOF) {
        if (chosen < 0) {
            raise_mismatch();
            goto done;
        }
        result = values[chosen];
        values[chosen] = NULL;
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (values[i] == NULL &&
            (values[i] = absent_value(&layout->fields[i], r, depth)) == NULL) {
            goto done;
        }
    }
    if (layout->form == FORM_WRAPPER) {
        result = values[0];
        values[0] = NULL;
        goto done;
    }
    if (layout->form == FORM_ENTRY || layout->form == FORM_TUPLE) {
        if ((result = PyTuple_New(count)) != NULL) {
            for (Py_ssize_t i = 0; i < count; i++) {
                PyTuple_SET_ITEM(result, i, values[i]);
                values[i] = NULL;
            }
        }
        goto done;
    }
    PyObject *rest = unknown.len
        ? PyBytes_FromStringAndSize((const char *)unknown.data, unknown.len)
        : Py_NewRef(Py_None);
    if (rest == NULL) {
        goto done;
    }
    PyObject *obj = PyBaseObject_Type.tp_new((PyTypeObject *)layout->cls, empty_tuple, NULL);
    if (obj == NULL) {
        Py_DECREF(rest);
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        /* A new object's slots are empty: each takes its value's reference. */
        Py_XSETREF(*(PyObject **)((char *)obj + layout->fields[i].offset), values[i]);
        values[i] = NULL;
    }
    Py_XSETREF(*(PyObject **)((char *)obj + layout->unknown_offset), rest);
    result = obj;
done:
    Py_LeaveRecursiveCall();
done_unentered:
    if (values != NULL) {
        for (Py_ssize_t i = 0; i < count; i++) {
            Py_XDECREF(values[i]);
        }
        if (values != stack) {
            PyMem_Free(values);
        }
    }
    PyMem_Free(unknown.data);
    return result;
}

/* Layout.decode(data, depth, budget) -> value: a whole value decoded from the bytes ``data``,
   its objects costing at most ``budget``. */
static PyObject *
layout_decode(layout_object *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decode() takes 3 arguments");
        return NULL;
    }
    PyObject *data = args[0];
    if (!PyBytes_CheckExact(data)) {
        PyErr_SetString(PyExc_TypeError, "decode() reads bytes");
        return NULL;
    }
    long depth = PyLong_AsLong(args[1]);
    if (depth == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int overflow = 0;
    long long budget = PyLong_AsLongLongAndOverflow(args[2], &overflow);
    if (budget == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (overflow > 0) {
        budget = LLONG_MAX;
    }
    if (budget < 0 || (self->form != FORM_STRUCT && self->form != FORM_ONEOF)) {
        return raise_mismatch();
    }
    const unsigned char *base = (const unsigned char *)PyBytes_AS_STRING(data);
    reader r = {data, base, budget};
    return decode_body(self, &r, base, base + PyBytes_GET_SIZE(data), depth);
}

/* -- repeated messages, for the generated code ------------------------------------------------
 *
 * A class whose own message the tables do not hold keeps its generated code, and that code
 * hands a list field of elements the tables hold to these two, with the element's layout. */

/* The Layout of a declared class (a struct or a Oneof), or NULL with TypeError set. */
static layout_object *
element_layout(PyObject *arg)
{
    if (!PyObject_TypeCheck(arg, &layout_type) || (((layout_object *)arg)->form != FORM_STRUCT &&
                                                   ((layout_object *)arg)->form != FORM_ONEOF)) {
        PyErr_SetString(PyExc_TypeError, "an element's layout is a declared class's Layout");
        return NULL;
    }
    return (layout_object *)arg;
}

/*
 * decode_messages(data, pos, end, out, depth, budget, layout, tag) -> pos
 *
 * ``pos`` is just after a record tagged ``tag`` of a repeated field whose elements ``layout``
 * holds. Decode that element and every one that follows it directly with the same tag, as
 * Layout.decode does at ``depth - 1``, appending them to the list ``out``; return the position
 * after the last (a tag of something else, or ``end``). ``budget[0]`` is charged what the
 * elements cost, as the generated code charges it, also when one is refused; a budget of None
 * is not counted, as in the generated code. Anything refused raises Mismatch.
 */
static PyObject *
speedups_decode_messages(PyObject *self, PyObject *args)
{
    PyObject *data, *out, *budget, *table;
    Py_ssize_t pos, stop;
    long depth;
    unsigned long long list_tag;
    if (!PyArg_ParseTuple(args, "O!nnO!lOOK:decode_messages", &PyBytes_Type, &data, &pos,
                          &stop, &PyList_Type, &out, &depth, &budget, &table, &list_tag)) {
        return NULL;
    }
    layout_object *layout = element_layout(table);
    if (layout == NULL) {
        return NULL;
    }
    /* None: the caller's input is too small to exhaust its budget, which is not counted. */
    PyObject *given = NULL;
    long long left = LLONG_MAX;
    if (budget != Py_None) {
        if (!PyList_Check(budget)) {
            PyErr_SetString(PyExc_TypeError, "decode_messages: budget must be a list or None");
            return NULL;
        }
        if (PyList_GET_SIZE(budget) != 1 || !PyLong_CheckExact(PyList_GET_ITEM(budget, 0))) {
            return raise_mismatch();
        }
        /* A budget past 64 bits is read as the largest one: no decode can spend the
           difference. What is charged is taken from the caller's own number, so it stays
           exact. */
        given = PyList_GET_ITEM(budget, 0);
        int overflow = 0;
        left = PyLong_AsLongLongAndOverflow(given, &overflow);
        if (overflow > 0) {
            left = LLONG_MAX;
        }
        else if (overflow || left < 0) {
            return raise_mismatch();
        }
    }
    if (pos < 0 || stop < pos || stop > PyBytes_GET_SIZE(data)) {
        return raise_mismatch();
    }
    Py_XINCREF(given);
    const unsigned char *base = (const unsigned char *)PyBytes_AS_STRING(data);
    const unsigned char *p = base + pos, *end = base + stop;
    reader r = {data, base, left};
    PyObject *result = NULL;
    for (;;) {
        const unsigned char *elem_end = read_len(&p, end);
        if (elem_end == NULL) {
            goto done;
        }
        PyObject *obj = decode_body(layout, &r, p, elem_end, depth - 1);
        if (obj == NULL) {
            goto done;
        }
        int failed = PyList_Append(out, obj);
        Py_DECREF(obj);
        if (failed) {
            goto done;
        }
        p = elem_end;
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
    if (given != NULL) {
        /* What was charged, charged in the caller's budget too (as the generated code does). */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *spent = PyLong_FromLongLong(left - r.budget);
        PyObject *rest = spent == NULL ? NULL : PyNumber_Subtract(given, spent);
        Py_XDECREF(spent);
        Py_DECREF(given);
        if (rest == NULL || PyList_SetItem(budget, 0, rest) < 0) {
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

/*
 * encode_messages(buf, items, depth, tag, layout) -> None
 *
 * Append every element of the list ``items`` to the bytearray ``buf`` as a record tagged by
 * the bytes ``tag``, its body written as Layout.encode writes it at ``depth - 1``. Anything
 * refused raises Mismatch and leaves ``buf`` as it was.
 */
static PyObject *
speedups_encode_messages(PyObject *self, PyObject *args)
{
    PyObject *buf, *items, *tag, *table;
    long depth;
    if (!PyArg_ParseTuple(args, "O!OlO!O:encode_messages", &PyByteArray_Type, &buf, &items,
                          &depth, &PyBytes_Type, &tag, &table)) {
        return NULL;
    }
    if (!PyByteArray_CheckExact(buf) || PyBytes_GET_SIZE(tag) > 10) {
        PyErr_SetString(PyExc_TypeError, "encode_messages() appends to a bytearray, by a tag");
        return NULL;
    }
    layout_object *layout = element_layout(table);
    if (layout == NULL) {
        return NULL;
    }
    if (!PyList_Check(items)) {
        return raise_mismatch();
    }
    /* The records are written apart and appended at the end: a refusal leaves buf alone. */
    wbuf w = {NULL, 0, 0, NULL};
    int failed = 0;
    /* An element's code (a called message) could change the list: it is read on every turn. */
    for (Py_ssize_t n = 0; n < PyList_GET_SIZE(items) && !failed; n++) {
        PyObject *item = Py_NewRef(PyList_GET_ITEM(items, n));
        Py_ssize_t body;
        failed = wput(&w, PyBytes_AS_STRING(tag), PyBytes_GET_SIZE(tag)) < 0 ||
                 wput(&w, "", 1) < 0;
        if (!failed) {
            body = w.len;
            failed = encode_body(layout, item, depth - 1, &w) < 0 || close_len(&w, body) < 0;
        }
        Py_DECREF(item);
    }
    if (!failed && w.len > 0) {
        Py_ssize_t start = PyByteArray_GET_SIZE(buf);
        failed = w.len > PY_SSIZE_T_MAX - start ? (PyErr_NoMemory(), 1)
                                                : PyByteArray_Resize(buf, start + w.len) < 0;
        if (!failed) {
            memcpy(PyByteArray_AS_STRING(buf) + start, w.data, (size_t)w.len);
        }
    }
    if (w.big != NULL) {
        Py_DECREF(w.big);
    }
    else {
        PyMem_Free(w.data);
    }
    if (failed) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef layout_methods[] = {
    {"fill", (PyCFunction)(void (*)(void))layout_fill, METH_FASTCALL,
     "fill(form, cls, cost, fields)\n\nSet the layout's message: once, after it was made."},
    {"encode", (PyCFunction)(void (*)(void))layout_encode, METH_FASTCALL,
     "encode(obj, depth) -> bytes\n\nThe encoding of obj, or Mismatch."},
    {"decode", (PyCFunction)(void (*)(void))layout_decode, METH_FASTCALL,
     "decode(data, depth, budget) -> value\n\nThe value decoded from bytes, or Mismatch."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject layout_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "savestate.codec._speedups.Layout",
    .tp_basicsize = sizeof(layout_object),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The table of one message for the native encoder and decoder (made empty, then "
              "filled once).",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)layout_dealloc,
    .tp_traverse = (traverseproc)layout_traverse,
    .tp_clear = (inquiry)layout_clear,
    .tp_methods = layout_methods,
};

static PyMethodDef speedups_methods[] = {
    {"bind", (PyCFunction)speedups_bind, METH_O,
     "bind(mismatch): the exception class the helpers raise for input they do not accept."},
    {"decode_packed", (PyCFunction)(void (*)(void))speedups_decode_packed, METH_FASTCALL,
     "decode_packed(data, pos, end, out, mode, bits, members=None) -> end\n\n"
     "Append the values of the packed varint record data[pos:end] to the list out."},
    {"encode_packed", (PyCFunction)(void (*)(void))speedups_encode_packed, METH_FASTCALL,
     "encode_packed(buf, values, mode, bits, enum_cls=None, members=None)\n\n"
     "Append the varints of the list values to the bytearray buf."},
    {"decode_messages", speedups_decode_messages, METH_VARARGS,
     "decode_messages(data, pos, end, out, depth, budget, layout, tag) -> pos\n\n"
     "Decode the elements of a repeated field of messages that layout holds, from the record\n"
     "after its tag at pos to the first record of something else, appending them to out."},
    {"encode_messages", speedups_encode_messages, METH_VARARGS,
     "encode_messages(buf, items, depth, tag, layout)\n\n"
     "Append every element of a list of messages that layout holds to buf, each tagged by tag."},
    {"varint_tables", speedups_varint_tables, METH_NOARGS,
     "varint_tables() -> (middle, last)\n\n"
     "The varint bytes of every 14-bit value, as a middle chunk and as the last chunk."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "savestate.codec._speedups",
    "Native helpers for the compiled codec: packed varints, and whole messages by their tables.", -1, speedups_methods,
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
        PyModule_AddIntConstant(m, "KIND_DOUBLE", KIND_DOUBLE) < 0 ||
        PyModule_AddIntConstant(m, "KIND_STRING", KIND_STRING) < 0 ||
        PyModule_AddIntConstant(m, "KIND_BYTES", KIND_BYTES) < 0 ||
        PyModule_AddIntConstant(m, "KIND_MESSAGE", KIND_MESSAGE) < 0 ||
        PyModule_AddIntConstant(m, "KIND_CALL", KIND_CALL) < 0 ||
        PyType_Ready(&layout_type) < 0 ||
        PyModule_AddObjectRef(m, "Layout", (PyObject *)&layout_type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

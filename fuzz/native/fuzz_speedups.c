/*
 * libFuzzer harness for the C accelerator (savestate/codec/_speedups.c), built with
 * AddressSanitizer and UndefinedBehaviorSanitizer: see fuzz/native/build.sh.
 *
 * The extension's source is compiled into this program (so that it is instrumented) and called
 * through its own entry points with a CPython interpreter embedded. Python objects are allocated
 * with malloc (PYTHONMALLOC=malloc), so that AddressSanitizer sees every buffer bound exactly.
 *
 * Each input picks a kind (mode and width) and an operation:
 *   - decode: a packed record from the input, with a start and an end chosen by the input (some
 *     out of bounds). The helper must return the end, or raise Mismatch and nothing else. What
 *     it accepts must encode back and decode again to the same values.
 *   - encode: a list of Python objects built from the input (ints of every size and sign,
 *     bools, floats, None, enum members, an int subclass). The helper must append varints, or
 *     raise Mismatch and leave the buffer as it was. What it accepts must decode to the same
 *     values.
 *   - decode_messages: records of repeated all-number messages (two layouts that cover every
 *     kind, a one-byte and two-byte tags) with bounds, depth and memory budget from the input.
 *     The helper must return a position within the bounds, or raise Mismatch and nothing else.
 *     What it accepts must encode (encode_messages) and decode again to the same slots, and
 *     encode again to the same bytes.
 *   - encode_messages: a list of elements whose slots hold objects built from the input (as for
 *     encode, plus floats of every size and a few _pb_unknown values), sometimes of another
 *     class. The helper must append records, or raise Mismatch and leave the buffer as it was.
 *     What it accepts must decode, and encode again to the same bytes.
 * Any other outcome aborts (a finding).
 */

#include "../../savestate/codec/_speedups.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PyObject *fuzz_mismatch;
static PyObject *enum_cls;      /* an IntEnum with members -3, 0, 1, 5 */
static PyObject *enum_members;  /* {number: member} */
static PyObject *int_subclass;  /* a subclass of int */
static PyObject *elem_cls;      /* a class with a slot for every field of both layouts */
static PyObject *other_cls;     /* another one */
static PyObject *layouts[2];    /* (cost, fields) */
static PyObject *enums_decode[2], *enums_encode[2];
static PyObject *slots_of;      /* slots_of(elements, layout) -> list of tuples, floats by bits */

static void
fail(const char *what)
{
    fprintf(stderr, "finding: %s\n", what);
    if (PyErr_Occurred()) {
        PyErr_Print();
    }
    abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("PYTHONMALLOC", "malloc", 1);
    Py_InitializeEx(0);
    fuzz_mismatch = PyErr_NewException("fuzz.Mismatch", NULL, NULL);
    if (fuzz_mismatch == NULL || speedups_bind(NULL, fuzz_mismatch) == NULL) {
        fail("bind");
    }
    PyObject *globals = PyDict_New();
    PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
    PyObject *r = PyRun_String(
        "import enum\n"
        "class Color(enum.IntEnum):\n"
        "    NEG = -3\n"
        "    RED = 0\n"
        "    GREEN = 1\n"
        "    BLUE = 5\n"
        "members = {m.value: m for m in Color}\n"
        "class Sub(int):\n"
        "    pass\n"
        "import struct\n"
        "names = ['f%d' % i for i in range(1, 13)] + ['g%d' % i for i in range(1, 7)]\n"
        "class Elem:\n"
        "    __slots__ = (*names, '_pb_unknown')\n"
        "class Other:\n"
        "    __slots__ = (*names, '_pb_unknown')\n"
        "numbers = ((0, 8), (0, 16), (0, 32), (0, 64), (1, 32), (1, 64), (2, 8), (2, 64),\n"
        "           (3, 8), (4, 32), (2, 32), (2, 16))\n"
        "first = tuple(((200 if i == 10 else i + 1) << 3, k, b, 'f%d' % (i + 1))\n"
        "              for i, (k, b) in enumerate(numbers))\n"
        "second = ((1 << 3 | 5, 5, 0, 'g1'), (2 << 3 | 5, 6, 0, 'g2'), (3 << 3 | 1, 7, 0, 'g3'),\n"
        "          (4 << 3 | 1, 8, 0, 'g4'), (5 << 3 | 5, 9, 0, 'g5'), (300 << 3 | 1, 10, 0, 'g6'))\n"
        "layouts = ((96, first), (64, second))\n"
        "def slots_of(elements, layout):\n"
        "    out = []\n"
        "    for e in elements:\n"
        "        row = [type(e).__name__, e._pb_unknown]\n"
        "        for field in layout[1]:\n"
        "            v = getattr(e, field[3])\n"
        "            if type(v) is float:  # a float field holds what its 32 bits can\n"
        "                v = struct.pack('<f' if field[1] == 9 else '<d', v)\n"
        "            row.append((type(v), v))\n"
        "        out.append(tuple(row))\n"
        "    return out\n",
        Py_file_input, globals, globals);
    if (r == NULL) {
        fail("setup");
    }
    Py_DECREF(r);
    enum_cls = Py_NewRef(PyDict_GetItemString(globals, "Color"));
    enum_members = Py_NewRef(PyDict_GetItemString(globals, "members"));
    int_subclass = Py_NewRef(PyDict_GetItemString(globals, "Sub"));
    elem_cls = Py_NewRef(PyDict_GetItemString(globals, "Elem"));
    other_cls = Py_NewRef(PyDict_GetItemString(globals, "Other"));
    slots_of = Py_NewRef(PyDict_GetItemString(globals, "slots_of"));
    PyObject *all = PyDict_GetItemString(globals, "layouts");
    for (int i = 0; i < 2; i++) {
        layouts[i] = Py_NewRef(PyTuple_GET_ITEM(all, i));
    }
    enums_decode[0] = PyTuple_Pack(1, enum_members);
    enums_encode[0] = PyTuple_Pack(1, enum_cls);
    enums_decode[1] = enums_encode[1] = Py_None;
    Py_DECREF(globals);
    return 0;
}

static const int widths[4] = {8, 16, 32, 64};

/* Call decode_packed(data, pos, end, out, mode, bits[, members]). */
static PyObject *
call_decode(PyObject *data, Py_ssize_t pos, Py_ssize_t end, PyObject *out, int mode, int bits)
{
    PyObject *args[7];
    args[0] = data;
    args[1] = PyLong_FromSsize_t(pos);
    args[2] = PyLong_FromSsize_t(end);
    args[3] = out;
    args[4] = PyLong_FromLong(mode);
    args[5] = PyLong_FromLong(bits);
    args[6] = enum_members;
    PyObject *r = speedups_decode_packed(NULL, args, mode == MODE_ENUM ? 7 : 6);
    Py_DECREF(args[1]);
    Py_DECREF(args[2]);
    Py_DECREF(args[4]);
    Py_DECREF(args[5]);
    return r;
}

static PyObject *
call_encode(PyObject *buf, PyObject *values, int mode, int bits)
{
    PyObject *args[5];
    args[0] = buf;
    args[1] = values;
    args[2] = PyLong_FromLong(mode);
    args[3] = PyLong_FromLong(bits);
    args[4] = enum_cls;
    PyObject *r = speedups_encode_packed(NULL, args, mode == MODE_ENUM ? 5 : 4);
    Py_DECREF(args[2]);
    Py_DECREF(args[3]);
    return r;
}

static void
expect_mismatch(const char *what)
{
    if (!PyErr_ExceptionMatches(fuzz_mismatch)) {
        fail(what);
    }
    PyErr_Clear();
}

/* Encode ``values`` and decode the bytes again: the same list must come back. */
static void
check_round_trip(PyObject *values, int mode, int bits)
{
    PyObject *buf = PyByteArray_FromStringAndSize("ab", 2);
    PyObject *r = call_encode(buf, values, mode, bits);
    if (r == NULL) {
        fail("re-encoding accepted values");
    }
    Py_DECREF(r);
    PyObject *data = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(buf),
                                               PyByteArray_GET_SIZE(buf));
    PyObject *again = PyList_New(0);
    r = call_decode(data, 2, PyBytes_GET_SIZE(data), again, mode, bits);
    if (r == NULL) {
        fail("decoding encoded values");
    }
    Py_DECREF(r);
    int same = PyObject_RichCompareBool(values, again, Py_EQ);
    if (same != 1) {
        fail("round trip changed the values");
    }
    Py_DECREF(again);
    Py_DECREF(data);
    Py_DECREF(buf);
}

static void
fuzz_decode(const uint8_t *data, size_t size, int mode, int bits)
{
    if (size < 2) {
        return;
    }
    /* Bounds from the first two bytes: mostly inside, sometimes past either end. */
    Py_ssize_t n = (Py_ssize_t)size - 2;
    Py_ssize_t pos = data[0] % (n + 3) - 1;
    Py_ssize_t end = n - (Py_ssize_t)(data[1] % (n + 3)) + 1;
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)data + 2, n);
    PyObject *out = PyList_New(0);
    PyObject *r = call_decode(bytes, pos, end, out, mode, bits);
    if (r == NULL) {
        expect_mismatch("decode raised something other than Mismatch");
    }
    else {
        if (pos < 0 || end > n || end < pos || PyLong_AsSsize_t(r) != end) {
            fail("decode accepted bad bounds or returned another position");
        }
        Py_DECREF(r);
        check_round_trip(out, mode, bits);
    }
    Py_DECREF(out);
    Py_DECREF(bytes);
}

static uint64_t
take(const uint8_t **p, const uint8_t *end, int count)
{
    uint64_t v = 0;
    for (int i = 0; i < count && *p < end; i++) {
        v = (v << 8) | *(*p)++;
    }
    return v;
}

/* One Python object from the input, of a sort chosen by its first byte. */
static PyObject *
make_element(const uint8_t **p, const uint8_t *end)
{
    unsigned int sort = (unsigned int)take(p, end, 1);
    switch (sort % 12) {
    case 0:
        return PyLong_FromLong((long)take(p, end, 1));
    case 1:
        return PyLong_FromLongLong((int64_t)take(p, end, 8));
    case 2:
        return PyLong_FromUnsignedLongLong(take(p, end, 8));
    case 3:
        return PyLong_FromLong(-(long)take(p, end, 2));
    case 4: { /* past 64 bits, either sign */
        PyObject *big = PyLong_FromUnsignedLongLong(take(p, end, 8));
        PyObject *shift = PyLong_FromLong(1 + (long)(sort >> 4));
        PyObject *r = PyNumber_Lshift(big, shift);
        Py_DECREF(big);
        Py_DECREF(shift);
        if (r != NULL && (sort & 0x80)) {
            PyObject *neg = PyNumber_Negative(r);
            Py_DECREF(r);
            r = neg;
        }
        return r;
    }
    case 5:
        return Py_NewRef((sort >> 4) & 1 ? Py_True : Py_False);
    case 6:
        return PyFloat_FromDouble((double)take(p, end, 1));
    case 7:
        return Py_NewRef(Py_None);
    case 8:
    case 9: {
        Py_ssize_t count = PyDict_Size(enum_members);
        Py_ssize_t i = 0, index = (Py_ssize_t)(take(p, end, 1) % (uint64_t)count);
        PyObject *key, *value;
        while (PyDict_Next(enum_members, &i, &key, &value)) {
            if (index-- == 0) {
                return Py_NewRef(value);
            }
        }
        return Py_NewRef(Py_None);
    }
    case 10:
        return PyObject_CallFunction(int_subclass, "K", (unsigned long long)take(p, end, 1));
    default:
        return PyLong_FromLongLong(-(int64_t)take(p, end, 4));
    }
}

static void
fuzz_encode(const uint8_t *data, size_t size, int mode, int bits)
{
    const uint8_t *p = data, *end = data + size;
    PyObject *values = PyList_New(0);
    while (p < end && PyList_GET_SIZE(values) < 64) {
        PyObject *item = make_element(&p, end);
        if (item == NULL) {
            fail("building an element");
        }
        PyList_Append(values, item);
        Py_DECREF(item);
    }
    PyObject *buf = PyByteArray_FromStringAndSize("xyz", 3);
    PyObject *r = call_encode(buf, values, mode, bits);
    if (r == NULL) {
        expect_mismatch("encode raised something other than Mismatch");
        if (PyByteArray_GET_SIZE(buf) != 3) {
            fail("a rejected encode left bytes behind");
        }
    }
    else {
        Py_DECREF(r);
        PyObject *bytes = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(buf),
                                                    PyByteArray_GET_SIZE(buf));
        PyObject *out = PyList_New(0);
        PyObject *d = call_decode(bytes, 3, PyBytes_GET_SIZE(bytes), out, mode, bits);
        if (d == NULL) {
            fail("decoding what encode wrote");
        }
        Py_DECREF(d);
        if (PyObject_RichCompareBool(values, out, Py_EQ) != 1) {
            fail("encode then decode changed the values");
        }
        Py_DECREF(out);
        Py_DECREF(bytes);
    }
    Py_DECREF(buf);
    Py_DECREF(values);
}

/* -- repeated messages of numbers ------------------------------------------------------------ */

static PyObject *
call_decode_messages(PyObject *data, Py_ssize_t pos, Py_ssize_t end, PyObject *out, long depth,
                     PyObject *budget, int which)
{
    PyObject *args[10];
    args[0] = data;
    args[1] = PyLong_FromSsize_t(pos);
    args[2] = PyLong_FromSsize_t(end);
    args[3] = out;
    args[4] = PyLong_FromLong(depth);
    args[5] = budget;
    args[6] = elem_cls;
    args[7] = layouts[which];
    args[8] = enums_decode[which];
    args[9] = PyLong_FromLong(10);
    PyObject *r = speedups_decode_messages(NULL, args, 10);
    Py_DECREF(args[1]);
    Py_DECREF(args[2]);
    Py_DECREF(args[4]);
    Py_DECREF(args[9]);
    return r;
}

static PyObject *
call_encode_messages(PyObject *buf, PyObject *items, long depth, int which)
{
    PyObject *args[7];
    args[0] = buf;
    args[1] = items;
    args[2] = PyLong_FromLong(depth);
    args[3] = PyBytes_FromStringAndSize("\x0a", 1);
    args[4] = elem_cls;
    args[5] = layouts[which];
    args[6] = enums_encode[which];
    PyObject *r = speedups_encode_messages(NULL, args, 7);
    Py_DECREF(args[2]);
    Py_DECREF(args[3]);
    return r;
}

/* Bytes appended by encode_messages(items), as bytes (the records, no prefix); NULL if refused. */
static PyObject *
encoded_messages(PyObject *items, int which)
{
    PyObject *buf = PyByteArray_FromStringAndSize(NULL, 0);
    PyObject *r = call_encode_messages(buf, items, 100, which);
    PyObject *bytes = NULL;
    if (r != NULL) {
        Py_DECREF(r);
        bytes = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(buf), PyByteArray_GET_SIZE(buf));
    }
    Py_DECREF(buf);
    return bytes;
}

/* Decode the records ``bytes`` (starting with the list's tag) in full; the list, or abort. */
static PyObject *
decoded_messages(PyObject *bytes, int which, const char *what)
{
    PyObject *out = PyList_New(0);
    if (PyBytes_GET_SIZE(bytes) == 0) {
        return out;
    }
    PyObject *budget = Py_BuildValue("[L]", (long long)1 << 60);
    PyObject *r = call_decode_messages(bytes, 1, PyBytes_GET_SIZE(bytes), out, 100, budget,
                                       which);
    if (r == NULL || PyLong_AsSsize_t(r) != PyBytes_GET_SIZE(bytes)) {
        fail(what);
    }
    Py_DECREF(r);
    Py_DECREF(budget);
    return out;
}

static int
same_slots(PyObject *a, PyObject *b, int which)
{
    PyObject *sa = PyObject_CallFunctionObjArgs(slots_of, a, layouts[which], NULL);
    PyObject *sb = PyObject_CallFunctionObjArgs(slots_of, b, layouts[which], NULL);
    if (sa == NULL || sb == NULL) {
        fail("reading slots");
    }
    int same = PyObject_RichCompareBool(sa, sb, Py_EQ);
    Py_DECREF(sa);
    Py_DECREF(sb);
    return same == 1;
}

/* Elements accepted by decode or encode: their encoding decodes to the same slots (a float
   field's as its 32 bits), and from there encoding and decoding change nothing at all. (The
   first encoding itself may differ from the second: a double too small for a float field is
   written, and is zero once read back, as the generated code does.) */
static void
check_messages_round_trip(PyObject *elements, int which)
{
    PyObject *bytes = encoded_messages(elements, which);
    if (bytes == NULL) {
        fail("encoding accepted elements");
    }
    PyObject *again = decoded_messages(bytes, which, "decoding encoded elements");
    if (!same_slots(elements, again, which)) {
        fail("decode(encode(x)) changed the slots");
    }
    PyObject *bytes2 = encoded_messages(again, which);
    if (bytes2 == NULL) {
        fail("encoding decoded elements");
    }
    PyObject *third = decoded_messages(bytes2, which, "decoding re-encoded elements");
    PyObject *bytes3 = encoded_messages(third, which);
    if (!same_slots(again, third, which) || bytes3 == NULL ||
        PyObject_RichCompareBool(bytes2, bytes3, Py_EQ) != 1) {
        fail("a second round trip changed the slots or the bytes");
    }
    Py_DECREF(bytes3);
    Py_DECREF(third);
    Py_DECREF(bytes2);
    Py_DECREF(again);
    Py_DECREF(bytes);
}

static void
fuzz_decode_messages(const uint8_t *data, size_t size, int which)
{
    if (size < 4) {
        return;
    }
    static const long depths[4] = {1, 2, 3, 100};
    long depth = depths[data[2] & 3];
    long long budget_left = (data[2] & 4) ? (long long)data[3] * 8 : (long long)1 << 40;
    Py_ssize_t n = (Py_ssize_t)size - 4;
    Py_ssize_t pos = data[0] % (n + 3) - 1;
    Py_ssize_t end = n - (Py_ssize_t)(data[1] % (n + 3)) + 1;
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)data + 4, n);
    PyObject *out = PyList_New(0);
    PyObject *budget = Py_BuildValue("[L]", budget_left);
    PyObject *r = call_decode_messages(bytes, pos, end, out, depth, budget, which);
    if (r == NULL) {
        expect_mismatch("decode_messages raised something other than Mismatch");
    }
    else {
        Py_ssize_t stop = PyLong_AsSsize_t(r);
        Py_DECREF(r);
        if (pos < 0 || end > n || end < pos || stop <= pos || stop > end || depth <= 1) {
            fail("decode_messages accepted bad bounds or returned another position");
        }
        long long left = PyLong_AsLongLong(PyList_GET_ITEM(budget, 0));
        long long cost = which == 0 ? 96 : 64;
        if (left < 0 || left != budget_left - cost * PyList_GET_SIZE(out)) {
            fail("decode_messages charged the budget wrongly");
        }
        check_messages_round_trip(out, which);
    }
    Py_DECREF(budget);
    Py_DECREF(out);
    Py_DECREF(bytes);
}

static PyObject *
make_slot_value(const uint8_t **p, const uint8_t *end)
{
    unsigned int sort = (unsigned int)take(p, end, 1);
    if ((sort & 0xF0) == 0xF0) {
        union { uint64_t u; double d; } bits;
        bits.u = take(p, end, 8);
        return PyFloat_FromDouble((sort & 1) ? bits.d : (double)(float)bits.d);
    }
    return make_element(p, end);
}

static void
fuzz_encode_messages(const uint8_t *data, size_t size, int which)
{
    const uint8_t *p = data, *end = data + size;
    static const char *unknowns[4] = {"", "\xf8\x06\x05", "\xfa\x06\x02" "ab", "\x99\x13" "12345678"};
    static const Py_ssize_t unknown_len[4] = {0, 3, 5, 10};
    PyObject *items = PyList_New(0);
    PyObject *fields = PyTuple_GET_ITEM(layouts[which], 1);
    while (p < end && PyList_GET_SIZE(items) < 16) {
        unsigned int how = (unsigned int)take(&p, end, 1);
        PyObject *cls = (how & 0x70) == 0x70 ? other_cls : elem_cls;
        PyObject *item = PyObject_CallNoArgs(cls);
        if (item == NULL) {
            fail("making an element");
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(fields); i++) {
            PyObject *name = PyTuple_GET_ITEM(PyTuple_GET_ITEM(fields, i), 3);
            PyObject *v = make_slot_value(&p, end);
            if (v == NULL || PyObject_SetAttr(item, name, v) < 0) {
                fail("setting a slot");
            }
            Py_DECREF(v);
        }
        PyObject *unknown;
        if ((how & 7) == 7) {
            unknown = PyByteArray_FromStringAndSize("\x08\x01", 2);
        }
        else if ((how & 3) == 0) {
            unknown = Py_NewRef(Py_None);
        }
        else {
            unknown = PyBytes_FromStringAndSize(unknowns[how & 3], unknown_len[how & 3]);
        }
        if ((how & 0x80) == 0 || PyObject_SetAttrString(item, "_pb_unknown", unknown) < 0) {
            /* sometimes left unset: reading it raises AttributeError, which must come through */
        }
        Py_DECREF(unknown);
        PyList_Append(items, item);
        Py_DECREF(item);
    }
    PyObject *buf = PyByteArray_FromStringAndSize("xyz", 3);
    long depth = (size & 3) == 3 ? 1 : 100;
    PyObject *r = call_encode_messages(buf, items, depth, which);
    if (r == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
        }
        else {
            expect_mismatch("encode_messages raised something other than Mismatch");
        }
        if (PyByteArray_GET_SIZE(buf) != 3) {
            fail("a refused encode_messages left bytes behind");
        }
    }
    else {
        Py_DECREF(r);
        if (depth <= 1 && PyList_GET_SIZE(items) > 0) {
            fail("encode_messages ignored the depth");
        }
        check_messages_round_trip(items, which);
    }
    Py_DECREF(buf);
    Py_DECREF(items);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    int selector = data[0];
    if (selector & 0x80) { /* repeated messages of numbers */
        int which = (selector >> 1) & 1;
        if (selector & 1) {
            fuzz_encode_messages(data + 1, size - 1, which);
        }
        else {
            fuzz_decode_messages(data + 1, size - 1, which);
        }
        return 0;
    }
    int mode = (selector & 7) % 5;
    int bits = mode == MODE_BOOL ? 8 : mode == MODE_ENUM ? 32 : widths[(selector >> 3) & 3];
    if (selector & 0x20) {
        fuzz_encode(data + 1, size - 1, mode, bits);
    }
    else {
        fuzz_decode(data + 1, size - 1, mode, bits);
    }
    return 0;
}

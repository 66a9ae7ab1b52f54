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
        "    pass\n",
        Py_file_input, globals, globals);
    if (r == NULL) {
        fail("setup");
    }
    Py_DECREF(r);
    enum_cls = Py_NewRef(PyDict_GetItemString(globals, "Color"));
    enum_members = Py_NewRef(PyDict_GetItemString(globals, "members"));
    int_subclass = Py_NewRef(PyDict_GetItemString(globals, "Sub"));
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    int selector = data[0];
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

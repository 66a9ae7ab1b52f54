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
 *   - decode_messages: records of repeated all-number messages (the elements' tables, made
 *     with Layout.fill, cover every number kind, with one-byte and two-byte tags) with bounds,
 *     depth and memory budget (or None, not counted) from the input. The helper must return a
 *     position within the bounds, or raise Mismatch and nothing else. What it accepts must encode
 *     (encode_messages) and decode again to the same slots, and encode again to the same bytes.
 *   - encode_messages: a list of elements whose slots hold objects built from the input (as for
 *     encode, plus floats of every size and a few _pb_unknown values), sometimes of another
 *     class. The helper must append records, or raise Mismatch and leave the buffer as it was.
 *     What it accepts must decode, and encode again to the same bytes.
 *   - layout decode and encode (inputs whose first byte is 0x40..0x7F; every input when the
 *     environment sets FUZZ_TARGET=layout): whole messages with Layout.decode and
 *     Layout.encode, on the layouts that the library itself builds (savestate.codec.native) for
 *     a schema declared at start-up (every form and field kind the tables hold, a recursive
 *     class, and nested classes without a table, which are called). The library is imported
 *     from the repository (or $FUZZ_SAVESTATE_ROOT) with this program's instrumented copy of
 *     the extension in place of the built one. The checks are Python (LAYOUT_SOURCE below):
 *       decode: the bytes after a class selector, a depth (1..8 or 100) and a memory budget
 *         (from none to past 64 bits) must decode to a value or raise Mismatch (or what a
 *         called class's generated function raises: savestate.codec.front.SIGNALS). A value
 *         must be the generated decoder's for the same bytes, depth and budget (every slot,
 *         floats by their bits), and its too with no budget counted, and encode again to the
 *         interpreter's bytes, or raise Mismatch.
 *       encode: a value built from the input (ints of every size and sign, out of range too,
 *         bools, floats of every bit pattern, strings with surrogates, bytes of every length,
 *         lists, dicts and tuples of the wrong length or type, int/str/bytes/list subclasses,
 *         instances of the wrong class, slots left unset, _pb_unknown of every type) must encode
 *         to bytes or raise Mismatch (or a called function's signal); bytes must be the
 *         interpreter's for the same value and depth.
 *     FUZZ_LAYOUT_SEEDS=DIR writes seeds (valid encodings, and the inputs that built them) to
 *     DIR at start-up. Counts of the outcomes are printed at exit.
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
static PyObject *layouts[2];    /* (cost, ((tag, kind, bits, slot), ...)) of the elements */
static PyObject *tables[2];     /* their Layouts */
static PyObject *slots_of;      /* slots_of(elements, layout) -> list of tuples, floats by bits */
static PyObject *layout_check;  /* check(input): None, or raises Finding */
static PyObject *layout_report; /* report(): prints the counts of outcomes */
static int layout_only;         /* FUZZ_TARGET=layout: every input goes to the layout checks */

static void
fail(const char *what)
{
    fprintf(stderr, "finding: %s\n", what);
    if (PyErr_Occurred()) {
        PyErr_Print();
    }
    abort();
}

/* -- whole messages (Layout.decode, Layout.encode) ------------------------------------------ */

/* The Python side of the layout checks, run in the module fuzz_layout with ``speedups`` (this
   program's instrumented module) and ``harness`` (this file's path) set. */
static const char LAYOUT_SOURCE[] =
    "import datetime, enum, os, random, struct, sys, warnings\n"
    "warnings.simplefilter(\"ignore\")  # the interpreter's notes on dropped unknown fields\n"
    "os.environ[\"SAVESTATE_CACHE_DIR\"] = \"\"  # no code cache: every codec generated here, now\n"
    "if speedups is not None:  # the instrumented module, in place of the built extension\n"
    "    sys.modules[\"savestate.codec._speedups\"] = speedups\n"
    "root = os.environ.get(\"FUZZ_SAVESTATE_ROOT\") or os.path.dirname(os.path.dirname(\n"
    "    os.path.dirname(os.path.abspath(harness))))\n"
    "sys.path.insert(0, root)\n"
    "from savestate import (EncodeError, Oneof, Protobuf, f32, f64, field, fixed32, fixed64, i8,\n"
    "    i16, i32, i64, int32, int64, sfixed32, sfixed64, sint32, sint64, u8, u16, u32, u64,\n"
    "    uint32, uint64)\n"
    "from savestate.codec import accel, interp\n"
    "from savestate.codec.front import SIGNALS, codec_of\n"
    "from savestate.codec.runtime import Mismatch\n"
    "from savestate.model.plan import (Container, EnumValue, Form, MessageValue, Presence,\n"
    "    ScalarValue, plan_of)\n"
    "if speedups is not None and accel.speedups is not speedups:\n"
    "    raise RuntimeError(\"the library did not load the harness's instrumented accelerator\")\n"
    "\n"
    "class Mode(enum.IntEnum):\n"
    "    OFF = 0\n"
    "    ON = 1\n"
    "    NEG = -2\n"
    "    BIG = 300\n"
    "\n"
    "class Leaf(Protobuf, package=\"fuzz.layout\"):\n"
    "    n: u32 = field(1)\n"
    "    name: str = field(2)\n"
    "\n"
    "class Choice(Oneof, package=\"fuzz.layout\"):\n"
    "    pass\n"
    "\n"
    "class Empty(Choice, variant=1):\n"
    "    pass\n"
    "\n"
    "class Number(Choice, variant=2):\n"
    "    value: i64 = field(1)\n"
    "    leaf: Leaf | None = field(2)\n"
    "\n"
    "class Wrapped(Protobuf, package=\"fuzz.layout\", transparent=True):\n"
    "    inner: u32 = field(1)\n"
    "\n"
    "# Classes with no table of their own: their users call their generated functions.\n"
    "class HasTransparent(Protobuf, package=\"fuzz.layout\"):\n"
    "    w: Wrapped = field(1)\n"
    "\n"
    "class HasDefault(Protobuf, package=\"fuzz.layout\"):\n"
    "    n: u32 = field(1, default=7)\n"
    "\n"
    "class HasDuration(Protobuf, package=\"fuzz.layout\"):\n"
    "    d: datetime.timedelta = field(1)\n"
    "\n"
    "class Unheld(Protobuf, package=\"fuzz.layout\"):\n"
    "    u8s: list[u8] = field(1)\n"
    "    duo: list[u32] = field(2, length=2)\n"
    "\n"
    "class Third(Oneof, package=\"fuzz.layout\"):  # a transparent variant: no table\n"
    "    pass\n"
    "\n"
    "class Boxed(Third, variant=1, transparent=True):\n"
    "    v: u32 = field(1)\n"
    "\n"
    "class Other(Oneof, package=\"fuzz.layout\"):  # a Oneof with a tuple variant\n"
    "    pass\n"
    "\n"
    "class Plain(Other, variant=1):\n"
    "    x: u32 = field(1)\n"
    "\n"
    "class Pair(Other, variant=2, tuple=True):\n"
    "    a: str = field(1)\n"
    "    b: i32 = field(2)\n"
    "\n"
    "class Node(Protobuf, package=\"fuzz.layout\"):  # recursive\n"
    "    child: \"Node | None\" = field(1)\n"
    "    n: u32 = field(2)\n"
    "    kids: \"list[Node]\" = field(3)\n"
    "\n"
    "class Scalars(Protobuf, package=\"fuzz.layout\"):\n"
    "    a_u8: u8 = field(1)\n"
    "    a_u16: u16 = field(2)\n"
    "    a_u32: u32 = field(3)\n"
    "    a_u64: u64 = field(4)\n"
    "    a_i8: i8 = field(5)\n"
    "    a_i16: i16 = field(6)\n"
    "    a_i32: i32 = field(7)\n"
    "    a_i64: i64 = field(8)\n"
    "    a_int32: int32 = field(9)\n"
    "    a_int64: int64 = field(10)\n"
    "    a_uint32: uint32 = field(11)\n"
    "    a_uint64: uint64 = field(12)\n"
    "    a_sint32: sint32 = field(13)\n"
    "    a_sint64: sint64 = field(14)\n"
    "    a_bool: bool = field(15)\n"
    "    a_mode: Mode = field(16)\n"
    "    a_fixed32: fixed32 = field(17)\n"
    "    a_sfixed32: sfixed32 = field(18)\n"
    "    a_fixed64: fixed64 = field(19)\n"
    "    a_sfixed64: sfixed64 = field(20)\n"
    "    a_f32: f32 = field(21)\n"
    "    a_f64: f64 = field(22)\n"
    "    a_int: int = field(23)\n"
    "    a_float: float = field(24)\n"
    "    a_str: str = field(25)\n"
    "    a_bytes: bytes = field(26)\n"
    "    o_u8: u8 | None = field(27)\n"
    "    o_i64: i64 | None = field(28)\n"
    "    o_bool: bool | None = field(29)\n"
    "    o_mode: Mode | None = field(30)\n"
    "    o_fixed64: fixed64 | None = field(31)\n"
    "    o_sfixed32: sfixed32 | None = field(32)\n"
    "    o_f32: f32 | None = field(33)\n"
    "    o_f64: f64 | None = field(34)\n"
    "    o_str: str | None = field(35)\n"
    "    o_bytes: bytes | None = field(36)\n"
    "    far: u32 = field(100)\n"
    "    farthest: sint64 = field(536870911)\n"
    "\n"
    "class Lists(Protobuf, package=\"fuzz.layout\"):\n"
    "    u16s: list[u16] = field(2)\n"
    "    u32s: list[u32] = field(3)\n"
    "    u64s: list[u64] = field(4)\n"
    "    i8s: list[i8] = field(5)\n"
    "    i32s: list[i32] = field(6)\n"
    "    i64s: list[i64] = field(7)\n"
    "    int32s: list[int32] = field(8)\n"
    "    int64s: list[int64] = field(9)\n"
    "    bools: list[bool] = field(10)\n"
    "    modes: list[Mode] = field(11)\n"
    "    fixed32s: list[fixed32] = field(12)\n"
    "    sfixed32s: list[sfixed32] = field(13)\n"
    "    fixed64s: list[fixed64] = field(14)\n"
    "    sfixed64s: list[sfixed64] = field(15)\n"
    "    f32s: list[f32] = field(16)\n"
    "    f64s: list[f64] = field(17)\n"
    "    strs: list[str] = field(18)\n"
    "    blobs: list[bytes] = field(19)\n"
    "    leaves: list[Leaf] = field(20)\n"
    "    choices: list[Choice] = field(21)\n"
    "    calls: list[HasDefault] = field(22)\n"
    "    pairs: list[tuple[str, u32]] = field(23)\n"
    "    triples: list[tuple[Leaf, i64, bytes]] = field(24)\n"
    "    key: bytes = field(25, length=4)\n"
    "    trio: list[Leaf] = field(26, length=3)\n"
    "\n"
    "class Maps(Protobuf, package=\"fuzz.layout\"):\n"
    "    by_name: dict[str, u32] = field(1)\n"
    "    by_number: dict[u32, Leaf] = field(2)\n"
    "    by_i64: dict[i64, str] = field(3)\n"
    "    by_bool: dict[bool, bytes] = field(4)\n"
    "    by_fixed: dict[fixed64, Mode] = field(5)\n"
    "    by_sint: dict[sint32, f64] = field(6)\n"
    "    by_int32: dict[int32, Choice] = field(7)\n"
    "    by_str_call: dict[str, HasTransparent] = field(8)\n"
    "    by_far: dict[u64, f32] = field(200)\n"
    "\n"
    "class Everything(Protobuf, package=\"fuzz.layout\"):\n"
    "    a_u8: u8 = field(1)\n"
    "    a_i64: i64 = field(2)\n"
    "    a_int32: int32 = field(3)\n"
    "    a_bool: bool = field(4)\n"
    "    a_mode: Mode = field(5)\n"
    "    a_fixed32: fixed32 = field(6)\n"
    "    a_sfixed64: sfixed64 = field(7)\n"
    "    a_f32: f32 = field(8)\n"
    "    a_f64: f64 = field(9)\n"
    "    text: str = field(10)\n"
    "    data: bytes = field(11)\n"
    "    opt: u64 | None = field(12)\n"
    "    opt_text: str | None = field(13)\n"
    "    leaf: Leaf = field(14)\n"
    "    maybe_leaf: Leaf | None = field(15)\n"
    "    choice: Choice = field(16)\n"
    "    leaves: list[Leaf] = field(17)\n"
    "    numbers: list[u64] = field(18)\n"
    "    floats: list[f64] = field(19)\n"
    "    modes: list[Mode] = field(20)\n"
    "    texts: list[str] = field(21)\n"
    "    blobs: list[bytes] = field(22)\n"
    "    by_name: dict[str, u32] = field(23)\n"
    "    by_number: dict[u32, Leaf] = field(24)\n"
    "    pairs: list[tuple[str, u32]] = field(25)\n"
    "    key: bytes = field(26, length=4)\n"
    "    trio: list[Leaf] = field(27, length=3)\n"
    "    transparent: HasTransparent | None = field(28)\n"
    "    defaulted: HasDefault | None = field(29)\n"
    "    node: Node | None = field(30)\n"
    "    scalars: Scalars | None = field(31)\n"
    "    lists: Lists | None = field(32)\n"
    "    maps: Maps | None = field(33)\n"
    "    plain_call: HasTransparent = field(34)\n"
    "    duration: HasDuration | None = field(35)\n"
    "    unheld: Unheld | None = field(36)\n"
    "    other: Other | None = field(37)\n"
    "    others: list[Other] = field(38)\n"
    "    third: Third | None = field(39)\n"
    "    big_number: u32 = field(300)\n"
    "\n"
    "# 255 fields numbered from 100, then small numbers: past the look-up table's 255 indexes.\n"
    "_ns = {\"__annotations__\": {}, \"__module__\": __name__}\n"
    "for _i in range(255):\n"
    "    _ns[\"__annotations__\"][\"w%d\" % _i] = u32\n"
    "    _ns[\"w%d\" % _i] = field(100 + _i)\n"
    "for _i in range(1, 11):\n"
    "    _ns[\"__annotations__\"][\"s%d\" % _i] = sint32\n"
    "    _ns[\"s%d\" % _i] = field(_i)\n"
    "_ns[\"__annotations__\"][\"tail\"] = Leaf | None\n"
    "_ns[\"tail\"] = field(63)\n"
    "Wide = type(Protobuf)(\"Wide\", (Protobuf,), _ns, package=\"fuzz.layout\")\n"
    "\n"
    "TABLED = (Leaf, Choice, Empty, Number, Other, Plain, Pair, Node, Scalars, Lists, Maps,\n"
    "          Everything, Wide)\n"
    "UNTABLED = (HasTransparent, HasDefault, HasDuration, Unheld, Third, Boxed)\n"
    "for _c in TABLED:\n"
    "    if type(codec_of(_c).native) is not accel.speedups.Layout:\n"
    "        raise RuntimeError(\"%s has no layout\" % _c.__name__)\n"
    "for _c in UNTABLED:\n"
    "    if codec_of(_c).native is not None:\n"
    "        raise RuntimeError(\"%s has a layout\" % _c.__name__)\n"
    "# The class a layout input is about, by its selector (more often those that hold most).\n"
    "TARGETS = (Everything, Scalars, Lists, Maps, Node, Choice, Other, Leaf, Everything, Wide,\n"
    "           Everything, Lists, Maps, Scalars, Everything, Node)\n"
    "DEPTHS = (1, 2, 3, 4, 5, 6, 7, 8, 100, 100, 100, 100, 100, 100, 100, 100)\n"
    "\n"
    "class Finding(Exception):\n"
    "    pass\n"
    "\n"
    "stats = {}\n"
    "\n"
    "def count(what):\n"
    "    stats[what] = stats.get(what, 0) + 1\n"
    "\n"
    "def report():\n"
    "    for k in sorted(stats):\n"
    "        sys.stderr.write(\"layout stats: %s: %d\\n\" % (k, stats[k]))\n"
    "\n"
    "# -- snapshots: everything a value holds, floats by their bits -----------------------\n"
    "\n"
    "_UNSET = (\"<unset>\",)\n"
    "\n"
    "def _slots(cls):\n"
    "    names = []\n"
    "    for base in reversed(cls.__mro__):\n"
    "        s = base.__dict__.get(\"__slots__\", ())\n"
    "        for n in ((s,) if isinstance(s, str) else s):\n"
    "            if n not in (\"__weakref__\", \"__dict__\") and n not in names:\n"
    "                names.append(n)\n"
    "    return names\n"
    "\n"
    "def snap(v):\n"
    "    t = type(v)\n"
    "    if t is list or t is tuple:\n"
    "        return (t.__name__, [snap(x) for x in v])\n"
    "    if t is dict:\n"
    "        return (\"dict\", [(snap(k), snap(x)) for k, x in v.items()])\n"
    "    if t is float:\n"
    "        return (\"float\", struct.pack(\"<d\", v))\n"
    "    if isinstance(v, Protobuf):\n"
    "        return (t.__name__, tuple((n, snap(getattr(v, n, _UNSET))) for n in _slots(t)))\n"
    "    return (t.__name__, v)\n"
    "\n"
    "# -- the decode operation -------------------------------------------------------------\n"
    "\n"
    "def _budget(b):\n"
    "    top = b >> 6\n"
    "    if top == 0:\n"
    "        return (b & 63) * 8\n"
    "    if top == 1:\n"
    "        return (b & 63) * 256\n"
    "    if top == 2:\n"
    "        return (b & 63) << 14\n"
    "    return (1 << 70) if b & 1 else (1 << 62)\n"
    "\n"
    "def _from_python(exc):\n"
    "    \"\"\"Whether an exception was raised in a Python function the native code called.\"\"\"\n"
    "    tb = exc.__traceback__\n"
    "    return tb is not None and tb.tb_next is not None\n"
    "\n"
    "def _refused(exc, what):\n"
    "    if type(exc) is Mismatch:\n"
    "        count(what + \": Mismatch\")\n"
    "        return\n"
    "    if isinstance(exc, SIGNALS + (AttributeError, TypeError)) and _from_python(exc):\n"
    "        # What a called class's generated function raises, as the interpreter would (for a\n"
    "        # slot left unset, or a _pb_unknown that is not bytes: AttributeError, TypeError).\n"
    "        count(what + \": \" + type(exc).__name__ + \" from a called function\")\n"
    "        return\n"
    "    raise Finding(\"%s raised %r (not Mismatch or a called function's signal)\"\n"
    "                  % (what, exc)) from exc\n"
    "\n"
    "def check_decode(sel, data):\n"
    "    cls = TARGETS[(sel >> 1) & 15]\n"
    "    if len(data) < 2:\n"
    "        return\n"
    "    depth = DEPTHS[data[0] & 15]\n"
    "    budget = _budget(data[1])\n"
    "    data = data[2:]\n"
    "    layout = codec_of(cls).native\n"
    "    try:\n"
    "        got = layout.decode(data, depth, budget)\n"
    "    except BaseException as exc:\n"
    "        _refused(exc, \"decode\")\n"
    "        return\n"
    "    count(\"decode: accepted\")\n"
    "    try:\n"
    "        want = codec_of(cls)._decode(data, 0, len(data), depth, [budget])\n"
    "    except BaseException as exc:\n"
    "        raise Finding(\"the native decoder accepted what the generated decoder refuses: %r\"\n"
    "                      % (exc,)) from exc\n"
    "    try:\n"
    "        uncounted = codec_of(cls)._decode(data, 0, len(data), depth, None)\n"
    "    except BaseException as exc:\n"
    "        raise Finding(\"the generated decoder refused without a budget what it accepted \"\n"
    "                      \"with one: %r\" % (exc,)) from exc\n"
    "    if snap(uncounted) != snap(want):\n"
    "        raise Finding(\"the generated decoder built another value without a budget\")\n"
    "    if snap(got) != snap(want):\n"
    "        raise Finding(\"the native decoder built another value than the generated one:\\n\"\n"
    "                      \"native    %r\\ngenerated %r\" % (snap(got), snap(want)))\n"
    "    try:\n"
    "        again = layout.encode(got, 100)\n"
    "    except BaseException as exc:\n"
    "        _refused(exc, \"re-encode\")\n"
    "        again = None\n"
    "    try:\n"
    "        expected = interp.encode(cls, got, 100)\n"
    "    except EncodeError:\n"
    "        count(\"re-encode: interpreter refused\")\n"
    "        expected = None\n"
    "    if again is not None:\n"
    "        if type(again) is not bytes:\n"
    "            raise Finding(\"encode returned %r\" % type(again))\n"
    "        if expected is None:\n"
    "            raise Finding(\"native bytes for a decoded value the interpreter refuses\")\n"
    "        if again != expected:\n"
    "            raise Finding(\"re-encoded: native %s, interpreter %s\"\n"
    "                          % (again.hex(), expected.hex()))\n"
    "        count(\"re-encode: same bytes\")\n"
    "\n"
    "# -- the encode operation: values built from the input --------------------------------\n"
    "\n"
    "class IntSub(int):\n"
    "    pass\n"
    "\n"
    "class FloatSub(float):\n"
    "    pass\n"
    "\n"
    "class StrSub(str):\n"
    "    pass\n"
    "\n"
    "class BytesSub(bytes):\n"
    "    pass\n"
    "\n"
    "class ListSub(list):\n"
    "    pass\n"
    "\n"
    "class Reader:\n"
    "    __slots__ = (\"data\", \"pos\", \"room\", \"zeros\")\n"
    "\n"
    "    def __init__(self, data, zeros=False):\n"
    "        self.data = data\n"
    "        self.pos = 0\n"
    "        self.room = 400  # values still to build (bounds the work of one input)\n"
    "        self.zeros = zeros  # every field its zero (the value not written), bar fixed sizes\n"
    "\n"
    "    def byte(self):\n"
    "        p = self.pos\n"
    "        if p < len(self.data):\n"
    "            self.pos = p + 1\n"
    "            return self.data[p]\n"
    "        return 0\n"
    "\n"
    "    def take(self, n):\n"
    "        p = self.pos\n"
    "        self.pos = p + n\n"
    "        return self.data[p:p + n]\n"
    "\n"
    "    def uint(self, n):\n"
    "        return int.from_bytes(self.take(n), \"little\")\n"
    "\n"
    "def _int(r, lo, hi):\n"
    "    c = r.byte()\n"
    "    k = c & 15\n"
    "    if k == 0:\n"
    "        return 0\n"
    "    if k == 1:\n"
    "        return 1\n"
    "    if k == 2:\n"
    "        return lo\n"
    "    if k == 3:\n"
    "        return hi\n"
    "    if k == 4:\n"
    "        return lo - 1 - (c >> 4)\n"
    "    if k == 5:\n"
    "        return hi + 1 + (c >> 4)\n"
    "    if k == 6:\n"
    "        return min(hi, r.byte())\n"
    "    if k == 7:\n"
    "        return max(lo, -r.byte())\n"
    "    if k == 8:\n"
    "        return lo + r.uint(8) % (hi - lo + 1)\n"
    "    if k == 9:\n"
    "        return r.uint(8) - (1 << 63)\n"
    "    if k == 10:\n"
    "        return IntSub(lo + r.uint(2) % (hi - lo + 1))\n"
    "    if k == 11:\n"
    "        return bool(c & 16)\n"
    "    if k == 12:\n"
    "        return (1 << (64 + (c >> 4))) + r.byte()\n"
    "    if k == 13:\n"
    "        return -(1 << (63 + (c >> 4))) - r.byte()\n"
    "    if k == 14:\n"
    "        return Mode.ON if c & 16 else Mode.NEG\n"
    "    return lo + r.uint(2) % (hi - lo + 1)\n"
    "\n"
    "_F32 = struct.Struct(\"<f\")\n"
    "_FLOATS = (0.0, -0.0, float(\"nan\"), float(\"inf\"), float(\"-inf\"), 1e300, -1e300, 1e-50,\n"
    "           5e-324, 3.4028234663852886e38, 3.4028235677973366e38, 3.402823669209385e38,\n"
    "           1.5, -2.25)  # the largest float32, and past it (rounding to it, or too large)\n"
    "\n"
    "def _float(r):\n"
    "    c = r.byte()\n"
    "    k = c & 7\n"
    "    if k == 0:\n"
    "        return 0.0\n"
    "    if k == 1:\n"
    "        return struct.unpack(\"<d\", r.take(8).ljust(8, b\"\\0\"))[0]\n"
    "    if k == 2:\n"
    "        return _F32.unpack(r.take(4).ljust(4, b\"\\0\"))[0]\n"
    "    if k == 3:\n"
    "        return _FLOATS[(c >> 3) % len(_FLOATS)]\n"
    "    if k == 4:\n"
    "        return FloatSub(c >> 3)\n"
    "    if k == 5:\n"
    "        return (c >> 3) - 8  # an int\n"
    "    if k == 6:\n"
    "        return bool(c & 8)\n"
    "    return float(r.byte()) / 8.0\n"
    "\n"
    "def _str(r):\n"
    "    c = r.byte()\n"
    "    k = c & 7\n"
    "    if k == 0:\n"
    "        return \"\"\n"
    "    if k == 1:\n"
    "        return r.take(c >> 3).decode(\"latin-1\")\n"
    "    if k == 2:\n"
    "        return r.take(c >> 3).decode(\"utf-8\", \"surrogateescape\")  # lone surrogates\n"
    "    if k == 3:\n"
    "        return (\"h\\xe9llo\", \"\\U0001F600\", \"\\udc80\", \"a\" * 200, \"\\x00\", \"z\" * 20000,\n"
    "                \"\\u20ac\" * 50, \"\\ud800\\udc00\")[(c >> 3) & 7]\n"
    "    if k == 4:\n"
    "        return StrSub(\"s\")\n"
    "    if k == 5:\n"
    "        return b\"x\"\n"
    "    return \"x\" * (c >> 3)\n"
    "\n"
    "def _bytes(r, length=None):\n"
    "    c = r.byte()\n"
    "    k = c & 7\n"
    "    if length is not None and k < 4:\n"
    "        n = length + (0, 0, 1, -1)[k]\n"
    "        return r.take(n).ljust(n, b\"\\0\")\n"
    "    if k == 0:\n"
    "        return b\"\"\n"
    "    if k == 1:\n"
    "        return r.take(c >> 3)\n"
    "    if k == 2:\n"
    "        return b\"z\" * ((c >> 3) * 40)\n"
    "    if k == 3:\n"
    "        return bytearray(r.take(c >> 3))\n"
    "    if k == 4:\n"
    "        return BytesSub(b\"b\")\n"
    "    if k == 5:\n"
    "        return \"x\"\n"
    "    if k == 6:\n"
    "        return memoryview(b\"m\")\n"
    "    if c & 8:\n"
    "        return b\"\\x00\" * 20000\n"
    "    if c & 16:  # around 1 MiB, where the encoder's output moves into its own bytes\n"
    "        return b\"\\x01\" * ((1 << 20) - 256 + (c >> 5) * 97)\n"
    "    return b\"\\x00\" * 130\n"
    "\n"
    "def _members(vp):\n"
    "    return list(vp.members.values())\n"
    "\n"
    "def _enum(r, vp):\n"
    "    c = r.byte()\n"
    "    members = _members(vp)\n"
    "    k = c & 7\n"
    "    if k < 4:\n"
    "        return members[(c >> 3) % len(members)]\n"
    "    if k == 4:\n"
    "        return int(members[(c >> 3) % len(members)])  # a plain int\n"
    "    if k == 5:\n"
    "        return 7  # no member\n"
    "    if k == 6:\n"
    "        return IntSub(1)\n"
    "    return True\n"
    "\n"
    "def _weird(r):\n"
    "    c = r.byte()\n"
    "    pool = (None, 0, -1, 1 << 64, 1.5, float(\"nan\"), \"x\", \"\\udc80\", b\"x\", bytearray(b\"ab\"),\n"
    "            [], {}, (), [1], {1: 2}, (\"a\", 1), True, IntSub(1), Mode.ON, object(), [None],\n"
    "            {\"k\": None}, (\"a\", 1, 2), [\"a\", 1])\n"
    "    k = c % (len(pool) + 5)\n"
    "    if k < len(pool):\n"
    "        return pool[k]\n"
    "    cls = (Leaf, Empty, Number, Node, Plain)[k - len(pool)]\n"
    "    obj = object.__new__(cls)\n"
    "    for name in _slots(cls):\n"
    "        if name != \"_pb_unknown\":\n"
    "            object.__setattr__(obj, name, None)\n"
    "    object.__setattr__(obj, \"_pb_unknown\", None)\n"
    "    return obj\n"
    "\n"
    "def _scalar(r, vp, length=None):\n"
    "    kind = vp.kind\n"
    "    e = kind.encoding\n"
    "    if e == \"string\":\n"
    "        return _str(r)\n"
    "    if e == \"bytes\":\n"
    "        return _bytes(r, length)\n"
    "    if e in (\"float\", \"double\"):\n"
    "        return _float(r)\n"
    "    if e == \"bool\":\n"
    "        c = r.byte()\n"
    "        return (False, True, False, True, 0, 1, IntSub(1), None)[c & 7]\n"
    "    return _int(r, kind.lo, kind.hi)\n"
    "\n"
    "def _struct_plan(cls):\n"
    "    m = plan_of(cls)\n"
    "    if m.form is Form.STRUCT and m.cls is cls:\n"
    "        return m\n"
    "    for f in m.fields:\n"
    "        if f.variant is cls:\n"
    "            return f.value.message\n"
    "    raise RuntimeError(\"no plan for %r\" % cls)\n"
    "\n"
    "def _variants(m):\n"
    "    return [f.variant for f in m.fields]\n"
    "\n"
    "def _unknown(r):\n"
    "    c = r.byte()\n"
    "    k = c & 7\n"
    "    if k < 3:\n"
    "        return None\n"
    "    if k == 3:\n"
    "        return b\"\"\n"
    "    if k == 4:\n"
    "        return b\"\\x98\\x06\\x01\"  # field 99\n"
    "    if k == 5:\n"
    "        return r.take(c >> 4)  # any bytes, written as they are\n"
    "    if k == 6:\n"
    "        return bytearray(b\"\\x98\\x06\\x01\")\n"
    "    return (1, \"x\", b\"\\x08\\x05\", _UNSET)[(c >> 3) & 3]\n"
    "\n"
    "def _struct(r, cls, nest):\n"
    "    m = _struct_plan(cls)\n"
    "    obj = object.__new__(cls)\n"
    "    u = _unknown(r)  # first: at a fixed place for the outermost message\n"
    "    if u is not _UNSET:\n"
    "        object.__setattr__(obj, \"_pb_unknown\", u)\n"
    "    for f in m.fields:\n"
    "        v = _field(r, f, nest + 1)\n"
    "        if v is not _UNSET:\n"
    "            object.__setattr__(obj, f.attr, v)\n"
    "    return obj\n"
    "\n"
    "def _message(r, vp, nest, length=None):\n"
    "    m = vp.message\n"
    "    if m.form is Form.WRAPPER:  # a fixed array\n"
    "        inner = m.fields[0]\n"
    "        c = r.byte()\n"
    "        n = length + (0, 0, 0, 1, -1, 0, 0, 0)[c & 7]\n"
    "        items = [_value(r, inner.value, nest + 1) for _ in range(max(n, 0))]\n"
    "        return tuple(items) if c & 8 and c & 16 else items\n"
    "    if m.form is Form.TUPLE:\n"
    "        c = r.byte()\n"
    "        items = [_value(r, f.value, nest + 1) for f in m.fields]\n"
    "        if c & 7 == 7:\n"
    "            items.append(0)\n"
    "        elif c & 7 == 6:\n"
    "            items.pop()\n"
    "        return list(items) if c & 8 and c & 16 else tuple(items)\n"
    "    if m.form is Form.DURATION:\n"
    "        c = r.byte()\n"
    "        if c & 7 == 7:\n"
    "            return 5  # not a timedelta\n"
    "        return datetime.timedelta(seconds=r.uint(4) - (1 << 31), microseconds=r.uint(3))\n"
    "    if m.form is Form.ONEOF:\n"
    "        c = r.byte()\n"
    "        variants = _variants(m)\n"
    "        cls = variants[c % len(variants)]\n"
    "        if cls is Boxed:\n"
    "            obj = object.__new__(Boxed)\n"
    "            object.__setattr__(obj, \"v\", _int(r, 0, (1 << 32) - 1))\n"
    "            return obj\n"
    "        return _struct(r, cls, nest)\n"
    "    return _struct(r, vp.cls, nest)\n"
    "\n"
    "def _value(r, vp, nest, length=None):\n"
    "    if r.room <= 0:\n"
    "        return _zero(vp)\n"
    "    r.room -= 1\n"
    "    c = r.byte()\n"
    "    if c >= 0xF6:\n"
    "        return _weird(r)\n"
    "    if isinstance(vp, ScalarValue):\n"
    "        return _scalar(r, vp, length)\n"
    "    if isinstance(vp, EnumValue):\n"
    "        return _enum(r, vp)\n"
    "    if nest > 120:\n"
    "        return None\n"
    "    return _message(r, vp, nest, length)\n"
    "\n"
    "def _zero(vp):\n"
    "    if isinstance(vp, ScalarValue):\n"
    "        return vp.kind.python()\n"
    "    if isinstance(vp, EnumValue):\n"
    "        return _members(vp)[0]\n"
    "    return None\n"
    "\n"
    "def _wrap(f, v):\n"
    "    for nt in reversed(f.unwrap):\n"
    "        obj = object.__new__(nt.cls)\n"
    "        object.__setattr__(obj, nt.attr, v)\n"
    "        v = obj\n"
    "    return v\n"
    "\n"
    "def _zero_field(r, f, nest):\n"
    "    if f.presence is Presence.EXPLICIT:\n"
    "        return None\n"
    "    if f.container is Container.DICT:\n"
    "        return {}\n"
    "    if f.container is not Container.NONE and f.length is None:\n"
    "        return []\n"
    "    if f.length is not None:\n"
    "        if isinstance(f.value, MessageValue):\n"
    "            return _message(r, f.value, nest, f.length)\n"
    "        return b\"\\0\" * f.length\n"
    "    vp = f.value\n"
    "    if isinstance(vp, EnumValue):\n"
    "        return vp.members.get(0, _members(vp)[0])\n"
    "    if isinstance(vp, ScalarValue):\n"
    "        return _wrap(f, vp.kind.python())\n"
    "    if vp.message.form is Form.DURATION:\n"
    "        return datetime.timedelta()\n"
    "    return _message(r, vp, nest)\n"
    "\n"
    "def _field(r, f, nest):\n"
    "    if r.zeros:\n"
    "        return _zero_field(r, f, nest)\n"
    "    c = r.byte()\n"
    "    if c == 0xFF:\n"
    "        return _UNSET  # the slot left empty\n"
    "    if c >= 0xF8:\n"
    "        return _weird(r)\n"
    "    if f.presence is Presence.EXPLICIT and (c & 3 == 0 or r.room <= 0 or nest > 120):\n"
    "        return None\n"
    "    if f.container is Container.LIST:\n"
    "        n = 0 if r.room <= 0 or nest > 120 else (c >> 2) & 7\n"
    "        if f.length is not None:\n"
    "            n = f.length + (0, 0, 0, 0, 0, 1, -1, 0)[(c >> 2) & 7]\n"
    "        elif n == 7:\n"
    "            n = 150  # a packed record longer than 127 bytes\n"
    "        items = [_value(r, f.value, nest) for _ in range(n)]\n"
    "        if c & 0xE0 == 0xE0:\n"
    "            return tuple(items)\n"
    "        if c & 0xE0 == 0xC0:\n"
    "            return ListSub(items)\n"
    "        return items\n"
    "    if f.container is Container.DICT:\n"
    "        entry = f.message\n"
    "        n = 0 if r.room <= 0 or nest > 120 else (c >> 2) & 7\n"
    "        out = {}\n"
    "        for _ in range(n):\n"
    "            k = _value(r, entry.fields[0].value, nest)\n"
    "            v = _value(r, entry.fields[1].value, nest)\n"
    "            try:\n"
    "                out[k] = v\n"
    "            except TypeError:\n"
    "                pass\n"
    "        if c & 0xE0 == 0xE0:\n"
    "            return list(out.items())\n"
    "        return out\n"
    "    if f.container is Container.BYTES_LIST:\n"
    "        tail = [256] if c & 0xE0 == 0xE0 else []  # not a byte\n"
    "        return [r.byte() for _ in range((c >> 2) & 7)] + tail\n"
    "    if f.length is not None and isinstance(f.value, MessageValue):\n"
    "        return _message(r, f.value, nest, f.length)\n"
    "    return _wrap(f, _value(r, f.value, nest, f.length))\n"
    "\n"
    "def check_encode(sel, data):\n"
    "    cls = TARGETS[(sel >> 1) & 15]\n"
    "    if len(data) < 1:\n"
    "        return\n"
    "    depth = DEPTHS[data[0] & 15]\n"
    "    r = Reader(data[1:], data[0] & 0x70 == 0x10)\n"
    "    if cls is Choice:\n"
    "        value = _message(r, MessageValue(cls=Choice), 1)\n"
    "    elif cls is Other:\n"
    "        value = _message(r, MessageValue(cls=Other), 1)\n"
    "    else:\n"
    "        value = _struct(r, cls, 1)\n"
    "    if data[0] & 0xF0 == 0xF0:  # an instance of another class\n"
    "        value = _weird(r)\n"
    "    layout = codec_of(cls).native\n"
    "    try:\n"
    "        got = layout.encode(value, depth)\n"
    "    except BaseException as exc:\n"
    "        _refused(exc, \"encode\")\n"
    "        return\n"
    "    count(\"encode: accepted\")\n"
    "    if type(got) is not bytes:\n"
    "        raise Finding(\"encode returned %r\" % type(got))\n"
    "    try:\n"
    "        want = interp.encode(cls, value, depth)\n"
    "    except BaseException as exc:\n"
    "        raise Finding(\"native bytes %s for a value the interpreter refuses: %r\"\n"
    "                      % (got.hex(), exc)) from exc\n"
    "    if got != want:\n"
    "        raise Finding(\"encoded: native %s, interpreter %s\" % (got.hex(), want.hex()))\n"
    "\n"
    "def check(data):\n"
    "    sel = data[0]\n"
    "    if sel & 1:\n"
    "        check_encode(sel, data[1:])\n"
    "    else:\n"
    "        check_decode(sel, data[1:])\n"
    "\n"
    "def write_seeds(directory):\n"
    "    \"\"\"Seeds: valid encodings of values built from random bytes (decode), and the bytes\n"
    "    that built them (encode).\"\"\"\n"
    "    os.makedirs(directory, exist_ok=True)\n"
    "    rnd = random.Random(7)\n"
    "    written = 0\n"
    "    for i in range(3000):\n"
    "        index = i % len(TARGETS)\n"
    "        cls = TARGETS[index]\n"
    "        raw = bytes(rnd.choice((0, 0, 1, 2, 3, 4, 8, 16, rnd.randrange(256)))\n"
    "                    for _ in range(rnd.randrange(4, 120)))\n"
    "        r = Reader(raw)\n"
    "        if cls in (Choice, Other):\n"
    "            value = _message(r, MessageValue(cls=cls), 1)\n"
    "        else:\n"
    "            value = _struct(r, cls, 1)\n"
    "        try:\n"
    "            data = interp.encode(cls, value, 100)\n"
    "        except Exception:\n"
    "            continue\n"
    "        if written >= 120:\n"
    "            break\n"
    "        for name, seed in ((\"decode\", bytes((index << 1, 8, 0xC0)) + data),\n"
    "                           (\"encode\", bytes((index << 1 | 1, 8)) + raw)):\n"
    "            with open(os.path.join(directory, \"%s-%03d\" % (name, written)), \"wb\") as out:\n"
    "                out.write(bytes((0x40 | seed[0],)) + seed[1:])\n"
    "        written += 1\n"
    "    return written\n";

static void
print_layout_report(void)
{
    PyObject *r = PyObject_CallNoArgs(layout_report);
    if (r == NULL) {
        PyErr_Print();
    }
    Py_XDECREF(r);
}

static void
setup_layouts(void)
{
    const char *target = getenv("FUZZ_TARGET");
    layout_only = target != NULL && strcmp(target, "layout") == 0;
    PyObject *module = PyInit__speedups();
    PyObject *lmod = PyImport_AddModule("fuzz_layout"); /* borrowed */
    if (module == NULL || lmod == NULL) {
        fail("making the layout module");
    }
    PyObject *g = PyModule_GetDict(lmod);
    PyObject *harness = PyUnicode_FromString(__FILE__);
    if (PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        PyDict_SetItemString(g, "speedups", module) < 0 || harness == NULL ||
        PyDict_SetItemString(g, "harness", harness) < 0) {
        fail("layout globals");
    }
    Py_DECREF(harness);
    Py_DECREF(module);
    PyObject *r = PyRun_String(LAYOUT_SOURCE, Py_file_input, g, g);
    if (r == NULL) {
        fail("layout setup");
    }
    Py_DECREF(r);
    /* The library bound its own Mismatch: the older targets expect it from now on. */
    Py_SETREF(fuzz_mismatch, Py_NewRef(PyDict_GetItemString(g, "Mismatch")));
    layout_check = Py_NewRef(PyDict_GetItemString(g, "check"));
    layout_report = Py_NewRef(PyDict_GetItemString(g, "report"));
    const char *seeds = getenv("FUZZ_LAYOUT_SEEDS");
    if (seeds != NULL) {
        r = PyObject_CallMethod(lmod, "write_seeds", "s", seeds);
        if (r == NULL) {
            fail("writing seeds");
        }
        fprintf(stderr, "layout seeds: %ld written to %s\n", PyLong_AsLong(r), seeds);
        Py_DECREF(r);
    }
    atexit(print_layout_report);
}

/* One layout input: ``selector`` (its low six bits: the operation and the class), then the
   rest. Findings are the Python checks' exceptions. */
static void
fuzz_layout(int selector, const uint8_t *data, size_t size)
{
    PyObject *input = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size + 1);
    if (input == NULL) {
        fail("input bytes");
    }
    PyBytes_AS_STRING(input)[0] = (char)(selector & 0x3F);
    memcpy(PyBytes_AS_STRING(input) + 1, data, size);
    PyObject *r = PyObject_CallOneArg(layout_check, input);
    if (r == NULL) {
        fail("layout check");
    }
    Py_DECREF(r);
    Py_DECREF(input);
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
    setup_layouts();
    /* The elements' tables, filled by the extension's own Layout.fill (made ready above). */
    PyObject *layout_globals = PyModule_GetDict(PyImport_AddModule("fuzz_layout"));
    if (PyDict_SetItemString(globals, "speedups",
                             PyDict_GetItemString(layout_globals, "speedups")) < 0) {
        fail("tables globals");
    }
    r = PyRun_String(
        "def table(layout):\n"
        "    cost, fields = layout\n"
        "    rows = []\n"
        "    for tag, kind, bits, slot in fields:\n"
        "        # implicit presence; absent is the zero (an enum's member 0)\n"
        "        zero = {3: False, 4: Color.RED, 9: 0.0, 10: 0.0}.get(kind, 0)\n"
        "        enum = (members, Color) if kind == 4 else (None, None)\n"
        "        rows.append((tag >> 3, kind, bits if kind <= 4 else 0, 0, 0, 0, -1, slot, zero,\n"
        "                     *enum, None, None, None, None))\n"
        "    made = speedups.Layout()\n"
        "    made.fill(0, Elem, cost, tuple(rows))\n"
        "    return made\n"
        "tables = tuple(table(layout) for layout in layouts)\n",
        Py_file_input, globals, globals);
    if (r == NULL) {
        fail("tables");
    }
    Py_DECREF(r);
    for (int i = 0; i < 2; i++) {
        tables[i] = Py_NewRef(PyTuple_GET_ITEM(PyDict_GetItemString(globals, "tables"), i));
    }
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
    PyObject *args[6];
    args[0] = buf;
    args[1] = values;
    args[2] = PyLong_FromLong(mode);
    args[3] = PyLong_FromLong(bits);
    args[4] = enum_cls;
    args[5] = enum_members;
    PyObject *r = speedups_encode_packed(NULL, args, mode == MODE_ENUM ? 6 : 4);
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
    case 9: /* of the enum's class, not a member (int.__new__(Color, n)), any number */
        if ((sort >> 4) & 1) {
            return PyObject_CallMethod((PyObject *)&PyLong_Type, "__new__", "Oi", enum_cls,
                                       (int)(int8_t)take(p, end, 1));
        }
        /* fall through: a member, on the other half */
    case 8: {
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

/* Whether a list holds an object of the enum's class whose number is none of its members'
   (int.__new__(Color, 7)): what an enum list's encoder must refuse, since no decode reads that
   number back. One with a member's number is that member on the wire, and is written. */
static int
holds_a_stranger(PyObject *values)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        PyObject *item = PyList_GET_ITEM(values, i);
        if (Py_TYPE(item) == (PyTypeObject *)enum_cls
                && PyDict_GetItemWithError(enum_members, item) == NULL) {
            if (PyErr_Occurred()) {
                fail("looking up an enum member");
            }
            return 1;
        }
    }
    return 0;
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
        if (mode == MODE_ENUM && holds_a_stranger(values)) {
            fail("encode accepted a value of the enum's class that is none of its members");
        }
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
    PyObject *args = Py_BuildValue("(OnnOlOOi)", data, pos, end, out, depth, budget,
                                   tables[which], 10);
    if (args == NULL) {
        fail("decode_messages arguments");
    }
    PyObject *r = speedups_decode_messages(NULL, args);
    Py_DECREF(args);
    return r;
}

static PyObject *
call_encode_messages(PyObject *buf, PyObject *items, long depth, int which)
{
    PyObject *args = Py_BuildValue("(OOly#O)", buf, items, depth, "\x0a", (Py_ssize_t)1,
                                   tables[which]);
    if (args == NULL) {
        fail("encode_messages arguments");
    }
    PyObject *r = speedups_encode_messages(NULL, args);
    Py_DECREF(args);
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
    /* None: a budget the caller does not count (the helper must not either). */
    int uncounted = (data[2] & 8) != 0;
    PyObject *budget = uncounted ? Py_NewRef(Py_None) : Py_BuildValue("[L]", budget_left);
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
        long long cost = which == 0 ? 96 : 64;
        if (!uncounted) {
            long long left = PyLong_AsLongLong(PyList_GET_ITEM(budget, 0));
            if (left < 0 || left != budget_left - cost * PyList_GET_SIZE(out)) {
                fail("decode_messages charged the budget wrongly");
            }
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
    if (layout_only) {
        selector = 0x40 | (selector & 0x3F);
    }
    if ((selector & 0xC0) == 0x40) { /* whole messages (0x40 was unused by the packed kinds) */
        fuzz_layout(selector, data + 1, size - 1);
        return 0;
    }
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

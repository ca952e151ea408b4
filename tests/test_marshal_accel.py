"""The compiled Marshal fast path (``mcollective_py/_cmarshal.c``) against the pure decoder.

Its contract: for any bytes and limits, ``fast_loads`` returns exactly what the pure decoder
returns (same types, values, dict order and object sharing) or the FALLBACK sentinel, after
which ``marshal.loads`` runs the pure decoder.  So every test here is differential: the
accelerated result must be the pure one, or FALLBACK; and the public ``loads`` result or
``MarshalError`` must be the same with and without the accelerator.  The inputs: every
captured Ruby vector, the byte tables and errors of ``test_marshal.py``, its hypothesis
values, the worst-case shapes and mutation fuzzer of ``test_marshal_fuzz.py``, random token
streams of the fast path's subset (often subtly wrong), and targeted
hostile inputs (truncations, length-field corruptions, deep nesting, huge declared sizes,
link loops, 100k-member arrays, limits at and around every boundary).  Plus: the fast path
is really taken for MCollective envelopes, and it leaks neither references nor memory.

Skipped when the extension is not built (no compiler or no Python headers), unless
``MCO_REQUIRE_CMARSHAL=1``, which makes its absence a failure.
"""

from __future__ import annotations

import gc
import os
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcollective_py import marshal
from mcollective_py.errors import MarshalError
from mcollective_py.rubytypes import AsciiString, Regexp, Symbol
from mcollective_py.security.psk import PskSecurity
from tests.test_marshal import DECODE_ERRORS, TABLE, same, values
from tests.test_marshal_fuzz import SEEDS, _worst_cases, mutate
from tests.test_marshal_vectors import BODIES

if not marshal.ACCELERATED:
    if os.environ.get("MCO_REQUIRE_CMARSHAL") == "1":
        raise AssertionError(
            "MCO_REQUIRE_CMARSHAL=1 but mcollective_py._cmarshal is not in use: build it with "
            "the editable install (needs a C compiler and python3-dev), and unset "
            "MCO_PY_PURE_MARSHAL"
        )
    pytest.skip(
        "the compiled Marshal decoder is not in use (not built, or MCO_PY_PURE_MARSHAL=1)",
        allow_module_level=True,
    )

H = b"\x04\x08"
S = Symbol
FAST = marshal._FAST
FALLBACK = marshal._FALLBACK
DEFAULTS = {
    "max_depth": marshal.DEFAULT_MAX_DEPTH,
    "max_length": marshal.DEFAULT_MAX_LENGTH,
    "max_items": marshal.DEFAULT_MAX_ITEMS,
    "max_expansion": marshal.DEFAULT_MAX_EXPANSION,
}
w = marshal._wlong


def fast(data: bytes, **limits: Any) -> Any:
    lim = {**DEFAULTS, **limits}
    return FAST(data, lim["max_depth"], lim["max_length"], lim["max_items"], lim["max_expansion"])


@contextmanager
def pure_only() -> Iterator[None]:
    saved = marshal._FAST
    marshal._FAST = None
    try:
        yield
    finally:
        marshal._FAST = saved


def outcome(data: bytes, **limits: Any) -> tuple[str, Any]:
    """The public ``loads`` result: ("value", v) or ("error", message)."""
    try:
        return "value", marshal.loads(data, **limits)
    except MarshalError as exc:
        return "error", str(exc)


def identical(a: Any, b: Any) -> bool:
    """``same`` (types, values, float bits, dict order) all the way down, without recursion
    (the values may nest 100,000 deep), and the two values share objects in the same places:
    an id() bijection over what a link can reach (containers, strings and bytes longer than
    one, floats, Regexps)."""
    there: dict[int, int] = {}
    back: dict[int, int] = {}
    todo = [(a, b)]
    while todo:
        x, y = todo.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, (list, dict, float, Regexp)) or (
            isinstance(x, (str, bytes)) and not isinstance(x, Symbol) and len(x) > 1
        ):
            if there.setdefault(id(x), id(y)) != id(y) or back.setdefault(id(y), id(x)) != id(x):
                return False
        if isinstance(x, list):
            if len(x) != len(y):
                return False
            todo += zip(x, y, strict=True)
        elif isinstance(x, dict):
            if len(x) != len(y) or not same(
                getattr(x, "default", None), getattr(y, "default", None)
            ):
                return False
            todo += zip(x, y, strict=True)
            todo += zip(x.values(), y.values(), strict=True)
        elif not same(x, y):
            return False
    return True


def check(data: bytes, **limits: Any) -> bool:
    """Differential check of one input; True when the fast path gave the value."""
    got = fast(data, **limits)
    with pure_only():
        want = outcome(data, **limits)
    if got is not FALLBACK:
        assert want[0] == "value", f"fast path gave a value where pure says {want[1]!r}: {data!r}"
        assert identical(got, want[1]), f"fast path value differs for {data!r} {limits}"
    public = outcome(data, **limits)
    assert public[0] == want[0], data
    if want[0] == "error":
        assert public[1] == want[1]
    else:
        assert identical(public[1], want[1])
    return got is not FALLBACK


# ---------------------------------------------------------------------------------------------
# What it is used for


def test_the_fast_path_is_in_use() -> None:
    assert marshal.ACCELERATED
    assert marshal._FAST is not None
    assert fast(H + b"i\x06") == 1


def test_every_captured_envelope_and_body_takes_the_fast_path() -> None:
    hits = total = 0
    for path in BODIES:
        data = path.read_bytes()
        for blob in (data, marshal.loads(data)[S("body")]):
            total += 1
            hits += check(blob)
    assert total == 176  # 88 envelopes and their bodies
    assert hits == total, f"{total - hits} of {total} captured messages fell back"


def test_psk_decoding_of_real_messages_uses_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"hit": 0, "fallback": 0}

    def counting(*args: Any) -> Any:
        value = FAST(*args)
        calls["fallback" if value is FALLBACK else "hit"] += 1
        return value

    monkeypatch.setattr(marshal, "_FAST", counting)
    decoded = 0
    for path in BODIES:
        if "psk" not in path.parent.name:
            continue
        data = path.read_bytes()
        env = marshal.loads(data)
        sec = PskSecurity("mco-lab-psk", clock=lambda env=env: float(env[S("msgtime")]))
        if S("senderagent") in env:
            sec.decode_reply(data)
        else:
            sec.decode_request(data)
        decoded += 1
    assert decoded == 40
    # the warm-up loads above + two loads per decode, all of them on the fast path
    assert calls == {"hit": 40 * 3, "fallback": 0}


def test_the_pure_path_can_be_forced_by_environment() -> None:
    code = "from mcollective_py import marshal; print(marshal.ACCELERATED, marshal._FAST)"
    env = {**os.environ, "MCO_PY_PURE_MARSHAL": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "None"]


def test_allow_cycles_always_runs_the_pure_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(marshal, "_FAST", lambda *a: pytest.fail("fast path used"))
    x = marshal.loads(H + b"[\x06@\x00", allow_cycles=True)
    assert x[0] is x


# ---------------------------------------------------------------------------------------------
# Differential: known values, known errors, generated values


@pytest.mark.parametrize(("value", "wire"), TABLE, ids=[repr(v) for v, _ in TABLE])
def test_rubys_bytes_for_each_type(value: Any, wire: bytes) -> None:
    check(H + wire)


@pytest.mark.parametrize(
    ("wire", "message"), DECODE_ERRORS, ids=[repr(w) for w, _ in DECODE_ERRORS]
)
def test_every_decode_error_falls_back_to_the_same_error(wire: bytes, message: str) -> None:
    assert fast(wire) is FALLBACK
    with pytest.raises(MarshalError, match=message):
        marshal.loads(wire)


@settings(max_examples=400, deadline=None)
@given(values, st.integers(0, 6), st.integers(0, 40), st.integers(0, 60), st.integers(0, 20))
def test_generated_values(value: Any, depth: int, length: int, items: int, expansion: int) -> None:
    wire = marshal.dumps(value)
    check(wire)
    check(wire, max_depth=depth, max_length=length, max_items=items, max_expansion=expansion)


def test_the_common_types_take_the_fast_path() -> None:
    shared = "shared text"
    value = {
        S("s"): "text",
        S("a"): AsciiString("ascii"),
        S("b"): b"\x00\xff",
        S("bad"): "caf\udce9",  # invalid UTF-8 kept with surrogateescape
        S("i"): [0, -1, 122, 123, -124, 2**30 - 1, -(2**30), 2**30, -(2**31), 2**63, -(2**64) + 1],
        S("f"): [0.0, -0.0, 1.5, 1e300, 1e-300, float("inf"), float("-inf"), 0.1],
        S("n"): [None, True, False],
        S("sym"): [S("x"), S("x"), S("")],
        S("re"): [Regexp("^web\\d+$", 1), Regexp("é", 0, ascii=False)],
        S("link"): [shared, shared, {"k": shared}],
        "str key": {1: 2, 1.5: 3, None: 4, b"b": 5, AsciiString("k"): 6},
    }
    wire = marshal.dumps(value)
    assert check(wire)
    assert same(marshal.loads(wire), value)


# ---------------------------------------------------------------------------------------------
# Hostile input


def test_fuzzed_vectors() -> None:
    rng = random.Random(20261204)
    hits = 0
    for i in range(60_000):
        data = mutate(rng, SEEDS)
        if i % 5 == 0:
            hits += check(
                data,
                max_depth=rng.randrange(0, 8),
                max_length=rng.randrange(0, 200),
                max_items=rng.randrange(0, 300),
                max_expansion=rng.randrange(0, 100),
            )
        else:
            hits += check(data)
    assert hits > 1_000  # the fast path does decode plenty of the mutants


def _token(rng: random.Random, depth: int) -> bytes:
    """One random value in the fast path's subset, often subtly wrong (bad links, counts one
    off, invalid UTF-8, wrong ivars, oversized Bignums...)."""
    k = rng.randrange(16)
    if k == 0:
        return b"0"
    if k == 1:
        return rng.choice([b"T", b"F"])
    if k == 2:
        n = rng.choice(
            [0, 1, -1, 122, 123, -124, 2**30 - 1, -(2**31), rng.randrange(-(2**31), 2**31)]
        )
        return b"i" + w(n)
    if k == 3:
        n = rng.randrange(0, 12)
        return b"l" + rng.choice([b"+", b"-"]) + w(n) + rng.randbytes(2 * n)
    if k == 4:
        s = rng.choice([b"", b"a", b"ab", b"\xc3\xa9", b"\xff", b"x" * 70])
        return b'"' + w(len(s)) + s
    if k == 5:
        s = rng.choice([b"", b"a", b"ab", b"\xc3\xa9", b"\xff\xfe", b"x" * 130])
        ivar = rng.choice([b":\x06E", b";\x00", b";" + w(rng.randrange(4))])
        return b'I"' + w(len(s)) + s + b"\x06" + ivar + rng.choice([b"T", b"F", b"0"])
    if k == 6:
        return b":" + rng.choice([b"\x06a", b"\x06E", b"\x07ab", b"\x00", b"\x06\xff"])
    if k == 7:
        return b";" + w(rng.randrange(-1, 5))
    if k == 8:
        return b"@" + w(rng.randrange(-1, 8))
    if k == 9:
        texts = [b"1.5", b"nan", b"-", b"-0", b"1e-300", b"1e", b"1.5e+10", b".5", b"5."]
        text = rng.choice(texts)
        return b"f" + w(len(text)) + text
    if k == 10:
        s = rng.choice([b"a", b"\xc3\xa9", b"\xff"])
        opts = bytes([rng.randrange(8)])
        return b"I/" + w(len(s)) + s + opts + b"\x06:\x06E" + rng.choice([b"T", b"F"])
    if k in (11, 12, 13) and depth < 6:
        n = rng.randrange(0, 5)
        t = rng.choice(b"[{{")
        entries = n * (2 if t == ord("{") else 1) + rng.choice([0, 0, 0, -1, 1])
        return bytes([t]) + w(n) + b"".join(_token(rng, depth + 1) for _ in range(entries))
    return rng.choice([b"0", b"i\x06", b":\x06k", b'I"\x06k\x06:\x06ET'])


def test_generated_token_streams() -> None:
    rng = random.Random(20261205)
    hits = 0
    for i in range(50_000):
        data = H + _token(rng, 0)
        if i % 3 == 0:
            hits += check(
                data,
                max_depth=rng.randrange(0, 5),
                max_length=rng.randrange(0, 80),
                max_items=rng.randrange(0, 30),
                max_expansion=rng.randrange(0, 20),
            )
        else:
            hits += check(data)
    assert 15_000 < hits < 45_000  # both outcomes, plenty of each


def test_every_truncation_of_some_vectors() -> None:
    for path in BODIES[::8]:
        data = path.read_bytes()
        for n in range(len(data)):
            assert not check(data[:n])
        assert check(data)


def test_every_byte_of_some_vectors_replaced() -> None:
    # length fields, counts, type bytes, symbol and object link indices all get hit
    for path in BODIES[::20]:
        data = bytearray(path.read_bytes())
        for pos in range(2, len(data)):
            keep = data[pos]
            for b in (0x00, 0x01, 0x04, 0x05, 0x06, 0x7F, 0x80, 0xFA, 0xFC, 0xFF, keep ^ 1):
                data[pos] = b
                check(bytes(data))
            data[pos] = keep


def test_bit_flips_of_every_vector() -> None:
    rng = random.Random(7)
    for path in BODIES:
        data = path.read_bytes()
        for _ in range(40):
            flipped = bytearray(data)
            pos = rng.randrange(2, len(data))
            flipped[pos] ^= 1 << rng.randrange(8)
            check(bytes(flipped))


@pytest.mark.parametrize("n", [1, 10, 500])
@pytest.mark.parametrize("shape", sorted(_worst_cases(10)))
def test_worst_case_shapes(shape: str, n: int) -> None:
    data = _worst_cases(n)[shape]
    check(data)
    check(data, max_depth=10**6)
    check(data, max_items=n)
    check(data, max_expansion=n // 2)


def test_deep_nesting_at_and_around_max_depth() -> None:
    for depth in (0, 1, 2, 63, 64, 65):
        data = H + b"[\x06" * depth + b"[\x00"
        for limit in (depth - 1, depth, depth + 1, 64):
            check(data, max_depth=limit)
    data = H + b"[\x06" * 100_000 + b"[\x00"
    assert not check(data)  # over the default 64
    assert check(data, max_depth=100_001)


def test_huge_declared_sizes_fall_back() -> None:
    for data in [
        H + b"[\x04\xff\xff\xff\x7f",
        H + b"{\x04\xff\xff\xff\x7f",
        H + b'"\x04\xff\xff\xff\x7f',
        H + b":\x04\xff\xff\xff\x7f",
        H + b"f\x04\xff\xff\xff\x7f",
        H + b"l+\x04\xff\xff\xff\x7f",
        H + b'I"\x04\xff\xff\xff\x7f',
        H + b'I"\x06a\x04\xff\xff\xff\x7f',
        H + b"I/\x04\xff\xff\xff\x7f",
        H + b"[\x06@\x04\xff\xff\xff\x7f",
        H + b"[\x06;\x04\xff\xff\xff\x7f",
        H + b"[\xfc\x00\x00\x00\x80",
        H + b"i\x04\xff\xff\xff\xff",
        H + b"i\xfc\x00\x00\x00\x80",
        H + b"l+\x05" + b"\xff" * 10,  # more than 8 bytes: left to the pure decoder
    ]:
        check(data)
        check(data, max_length=2**40, max_items=2**40)


def test_link_loops_and_links_to_open_containers_fall_back() -> None:
    for data in [
        H + b"[\x06@\x00",
        H + b"{\x06i\x00@\x00",
        H + b"{\x06@\x00i\x00",
        H + b"[\x06[\x06@\x01",
        H + b"[\x07[\x06@\x00[\x00",
        H + b'[\x07I"\x06a\x06:\x06E@\x01T',
        H + b"[\x07[\x00@\x02",
        H + b"[\x07[\x00@\x01",  # a link to a closed empty Array: fine
    ]:
        check(data)


def test_hundred_thousand_member_arrays() -> None:
    n = 100_000
    assert check(H + b"[" + w(n) + b"0" * n)
    assert check(H + b"[" + w(n) + b"i\x06" * n)
    assert check(H + b"[" + w(n) + b":\x06a" + b";\x00" * (n - 1))
    data = H + b"[" + w(n) + b'"\x06a' + b"@\x06" * (n - 1)
    assert check(data, max_expansion=n)
    assert not check(data, max_expansion=n - 2)  # one item per link: n - 1 needed
    assert not check(H + b"[" + w(n) + b"0" * n, max_items=n - 1)
    assert not check(H + b"[" + w(n) + b"0" * (n - 1))


def test_link_expansion_and_items_at_their_boundaries() -> None:
    def dag(depth: int) -> list[Any]:
        x: list[Any] = []
        for _ in range(depth):
            x = [x, x]
        return x

    assert check(marshal.dumps(dag(15)))
    assert not check(marshal.dumps(dag(16)))
    assert check(marshal.dumps(dag(16)), max_expansion=10**6)
    data = marshal.dumps(dag(8))
    for limit in range(0, 600, 7):
        check(data, max_expansion=limit)
        check(data, max_items=limit)
    long = "x" * 200  # a link to it counts 1 + 200 // 64 = 4 items
    data = marshal.dumps([long, long, long])
    for limit in range(0, 12):
        check(data, max_expansion=limit)
        check(data, max_items=limit)


def test_limits_around_what_each_vector_needs() -> None:
    for path in BODIES[::11]:
        data = path.read_bytes()
        for limit in (0, 1, 2, 3, 4, 5, 6, 8, 16, 32, 40, 64, 100, 128, 256, 1000):
            check(data, max_depth=limit)
            check(data, max_length=limit)
            check(data, max_items=limit)
            check(data, max_expansion=limit)
        for limit in (-1, -(2**70), 2**70):
            check(data, max_depth=limit, max_length=limit, max_items=limit, max_expansion=limit)


def test_links_count_against_max_items_when_a_container_opens() -> None:
    # 3 declared + 1 linked, then an Array of 1: 4 declared + 1 linked > max_items=4
    data = H + b'[\x08"\x06a@\x06[\x060'
    assert check(data, max_items=5)
    assert not check(data, max_items=4)
    assert not check(H + b'[\x08"\x06a@\x06[\x060', max_items=4, max_expansion=10)


def test_negative_limits() -> None:
    # the pure decoder checks max_depth on a String's ivars too: a root String fails at -1
    for limit in (-1, -(2**70)):
        assert not check(H + b'I"\x06a\x06:\x06ET', max_depth=limit)
        assert not check(H + b'"\x06a', max_length=limit)
        assert not check(H + b'I"\x06a\x06:\x06ET', max_items=limit)
        assert not check(H + b'[\x07"\x06a@\x06', max_expansion=limit)
        assert check(H + b"i\x06", max_depth=limit, max_length=limit, max_items=limit)


def test_limits_that_are_not_ints_fall_back() -> None:
    data = H + b"[\x06i\x06"
    assert fast(data, max_depth=64.0) is FALLBACK
    assert fast(data, max_items="1") is FALLBACK
    assert marshal.loads(data, max_depth=64.0) == [1]


def test_hash_keys_python_would_merge_or_flood() -> None:
    check(H + b'{\x07:\x06ai\x06I"\x06a\x06;\x00Ti\x07')
    check(H + b"{\x07i\x06Ti\x06F")
    check(H + b"{\x07i\x06Tf\x061i\x07")
    p = 2**61 - 1
    for n in (32, 33, 40):
        flood = H + b"{" + w(n) + b"".join(marshal.dumps(k * p)[2:] + b"0" for k in range(n))
        check(flood)
    # 41 keys the fast path can read (Bignums of at most 8 bytes, Floats), all hashing to 1
    same_hash = [1 + k * p for k in range(9)] + [2.0 ** (61 * k) for k in range(-17, 17) if k]
    assert len({hash(k) for k in same_hash}) == 1
    assert not check(marshal.dumps(dict.fromkeys(same_hash)))
    assert check(marshal.dumps(dict.fromkeys(same_hash[:32])))
    assert check(marshal.dumps({i: i for i in range(32)}))
    check(marshal.dumps({i: i for i in range(33)}))  # more than 32 numeric keys: pure decides


def test_bytes_like_input() -> None:
    data = marshal.dumps({S("a"): ["b", 1]})
    for view in (bytearray(data), memoryview(data)):
        assert same(marshal.loads(view), marshal.loads(data))


def test_the_symbol_cache_is_shared_with_the_pure_decoder() -> None:
    data = BODIES[0].read_bytes()
    marshal._SYMBOL_CACHE.clear()
    with pure_only():
        marshal.loads(data)
    pure_cache = dict(marshal._SYMBOL_CACHE)
    marshal._SYMBOL_CACHE.clear()
    assert check(data)
    assert marshal._SYMBOL_CACHE.keys() == pure_cache.keys()
    first = fast(data)
    assert all(k is marshal._SYMBOL_CACHE[k] for k in first)  # the cached objects are used


# ---------------------------------------------------------------------------------------------
# References and memory


def _fallback_inputs() -> list[bytes]:
    vector = BODIES[0].read_bytes()
    return [
        vector[:-1],
        vector[:200],
        vector + b"0",
        H + b"[\x07[\x06@\x01i\x00",
        H + b'{\x07:\x06ai\x06I"\x06a\x06;\x00Ti\x07',
        H + b"[\x08" + b'I"\x06a\x06:\x06ET' + b"{\x06[\x00T",
        H + b"[\x06" * 70 + b"[\x00",
        H + b"[\x07" + b'"\x06a' + b"}\x00i\x00",
    ]


def test_no_reference_or_memory_leaks() -> None:
    vector = BODIES[0].read_bytes()
    inputs = [vector, marshal.loads(vector)[S("body")], *_fallback_inputs()]

    def run(times: int) -> None:
        for _ in range(times):
            for data in inputs:
                fast(data)

    run(200)  # warm caches
    gc.collect()
    refs = (sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(FALLBACK))
    tracemalloc.start()
    try:
        gc.collect()
        before, _ = tracemalloc.get_traced_memory()
        run(5_000)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(FALLBACK)) == refs
    assert after - before < 64 * 1024, f"{after - before} bytes kept after 50,000 decodes"


def test_rss_stays_flat_over_a_hundred_thousand_decodes() -> None:
    vector = BODIES[0].read_bytes()
    inputs = [vector, *_fallback_inputs()]

    def rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    for data in inputs:
        for _ in range(2_000):
            fast(data)
    gc.collect()
    start = rss()
    for data in inputs:
        for _ in range(12_500):
            fast(data)
    gc.collect()
    assert rss() - start < 4 * 1024 * 1024

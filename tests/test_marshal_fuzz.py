"""The decoder on hostile input: only values or MarshalError, bounded memory, linear work.

* 100,000+ seeded inputs (mutations of the real captured vectors and of values covering
  every type, truncations, splices, and plain random bytes) must each give a value or a
  ``MarshalError``; every value must re-encode, and re-encode the same after another round.
* Peak memory (tracemalloc) on worst-case shapes stays under a fixed multiple of the input.
* Work is linear: the number of Python bytecodes the decoder executes (counted with
  ``sys.settrace``, so no wall-clock thresholds) grows by the same factor as the input, for
  inputs shaped to provoke quadratic behaviour.
* A small hypothesis test on arbitrary bytes.
"""

from __future__ import annotations

import os
import random
import sys
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcollective_py import marshal
from mcollective_py.errors import MarshalError
from mcollective_py.rubytypes import AsciiString, EncodedString, HashWithDefault, Regexp, Symbol

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MCO_SHARED", REPO.parent / "shared"))
H = b"\x04\x08"


def _seeds() -> list[bytes]:
    seeds = []
    for d in ("psk-marshal", "ssl-marshal"):
        for path in sorted((SHARED / "vectors" / d).glob("*.body.bin")):
            outer = path.read_bytes()
            seeds += [outer, marshal.loads(outer)[Symbol("body")]]
    shared = ["shared"]
    seeds.append(
        marshal.dumps(
            [
                None,
                True,
                False,
                0,
                -124,
                2**31,
                -(2**70),
                1.5,
                -0.0,
                float("nan"),
                1e300,
                "é",
                AsciiString("a"),
                EncodedString("日本", "Shift_JIS"),
                EncodedString("x", "Shift_JIS"),
                b"\xff",
                Symbol("s"),
                Symbol("é"),
                Regexp("^a.b$", 5),
                Regexp("é", 16, ascii=False),
                HashWithDefault({1: 2}, default=3),
                {Symbol("k"): shared, "k": shared, 1.5: [[]], None: {}},
                [{"statement": "a"}, {"statement": "b"}],
            ]
        )
    )
    return seeds


SEEDS = _seeds()
INTERESTING = b'\x00\x01\x04\x05\x06\x7f\x80\xfa\xfb\xfc\xff0TFi l+f"I:;[{}@/oucedSM\x06E'


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    """One fuzz input."""
    kind = rng.randrange(10)
    if kind == 0:
        return H + rng.randbytes(rng.randrange(40))
    if kind == 1:
        return rng.randbytes(rng.randrange(12))
    data = bytearray(rng.choice(seeds))
    if kind == 2:  # truncate
        return bytes(data[: rng.randrange(len(data) + 1)])
    if kind == 3:  # splice two inputs
        other = rng.choice(seeds)
        return bytes(data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other)) :])
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(data) + 1)
        op = rng.randrange(5)
        if op == 0 and pos < len(data):  # flip a byte
            data[pos] = rng.randrange(256)
        elif op == 1 and pos < len(data):  # an interesting byte
            data[pos] = rng.choice(INTERESTING)
        elif op == 2:  # insert bytes
            data[pos:pos] = rng.randbytes(rng.randint(1, 3))
        elif op == 3:  # delete a slice
            del data[pos : pos + rng.randint(1, 8)]
        else:  # duplicate a slice
            data[pos:pos] = data[pos : pos + rng.randint(1, 16)]
    return bytes(data)


def test_hundred_thousand_fuzzed_inputs_give_a_value_or_marshal_error() -> None:
    rng = random.Random(20261126)
    outcomes: Counter[str] = Counter()
    for _ in range(100_000):
        data = mutate(rng, SEEDS)
        try:
            value = marshal.loads(data)
        except MarshalError as exc:
            outcomes[str(exc).split(" at offset")[0][:40]] += 1
            continue
        except Exception as exc:  # pragma: no cover - this is the failure being hunted
            raise AssertionError(f"loads({data!r}) raised {exc!r}") from exc
        outcomes["<value>"] += 1
        # Whatever decodes re-encodes, and re-encoding is a fixed point.
        wire = marshal.dumps(value)
        assert marshal.dumps(marshal.loads(wire)) == wire, data
    assert sum(outcomes.values()) == 100_000
    # The mix is real: plenty of both, and many different errors.
    assert outcomes["<value>"] > 3_000
    assert len(outcomes) > 40


def _worst_cases(n: int) -> dict[str, bytes]:
    """Inputs of about n items shaped to stress memory or time."""
    w = marshal._wlong  # the packed-long writer, for the counts
    p = 2**61 - 1
    return {
        "empty hashes": H + b"[" + w(n) + b"{\x00" * n,
        "empty arrays": H + b"[" + w(n) + b"[\x00" * n,
        "floats": H + b"[" + w(n) + b"f\x060" * n,
        "strings": H + b"[" + w(n) + b'I"\x06a\x06:\x06ET' + b'I"\x06a\x06;\x00T' * (n - 1),
        "binary strings": H + b"[" + w(n) + b'"\x06a' * n,
        "encoded strings": H
        + b"["
        + w(n)
        + b'I"\x06a\x06:\rencoding"\x0bEUC-JP'
        + b'I"\x06a\x06;\x00@\x07' * (n - 1),
        "links": H + b"[" + w(n) + b'"\x06a' + b"@\x06" * (n - 1),
        "symbols": H + b"[" + w(n) + b"".join(b":" + w(6) + b"s%05d" % i for i in range(n)),
        "symbol links": H + b"[" + w(n) + b":\x06s" + b";\x00" * (n - 1),
        "nesting": H + b"[\x06" * n + b"[\x00",
        "big hash": H + b"{" + w(n) + b"".join(b"i" + w(i) + b"T" for i in range(n)),
        "same-hash ints": H
        + b"{"
        + w(n)
        + b"".join(marshal.dumps(k * p)[2:] + b"0" for k in range(1, n + 1)),
        "bignums": H + b"[" + w(n) + b"l+\x0a" + b"\x01" * 10 + b"@\x06" * (n - 1),
    }


@pytest.mark.parametrize("shape", sorted(_worst_cases(10)))
def test_peak_memory_is_bounded_by_the_input_size(shape: str) -> None:
    data = _worst_cases(5_000)[shape]
    depth = 10_000
    tracemalloc.start()
    try:
        try:
            marshal.loads(data, max_depth=depth)
        except MarshalError:
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # About 40 bytes of Python objects per input byte at worst, plus ~250 bytes per open
    # container (the parser's stack), which max_depth bounds (64 by default).
    limit = 48 * len(data) + 256 * min(depth, len(data)) + 256 * 1024
    assert peak < limit, f"{shape}: {peak} bytes for {len(data)} input bytes"


def test_declared_sizes_cannot_allocate_ahead_of_the_input() -> None:
    tracemalloc.start()
    try:
        for data in [
            H + b"[\x04\xff\xff\xff\x7f",
            H + b"{\x04\xff\xff\xff\x7f",
            H + b'"\x04\xff\xff\xff\x7f',
            H + b"l+\x04\xff\xff\xff\x7f",
            H + b'I"\x06a\x04\xff\xff\xff\x7f',
        ]:
            with pytest.raises(MarshalError):
                marshal.loads(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def _bytecodes(data: bytes) -> int:
    """Bytecodes executed in marshal.py while decoding ``data`` (deterministic)."""
    count = 0
    target = marshal.__file__

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if frame.f_code.co_filename != target:
            return None
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return tracer

    marshal._SYMBOL_CACHE.clear()  # measure the cold path every time
    sys.settrace(tracer)
    try:
        marshal.loads(data, max_depth=10**6)
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize("shape", sorted(set(_worst_cases(10)) - {"same-hash ints"}))
def test_work_grows_linearly_with_the_input(shape: str) -> None:
    small = _bytecodes(_worst_cases(500)[shape])
    large = _bytecodes(_worst_cases(2000)[shape])
    # 4x the input: a linear decoder does ~4x the work, a quadratic one ~16x.
    assert large < 4.5 * small, f"{shape}: {small} -> {large} bytecodes"


def test_numeric_keys_on_one_hash_value_are_refused() -> None:
    # hash(k * (2**61 - 1)) is 0 for every k: a dict of such keys fills in quadratic time.
    data = _worst_cases(1000)["same-hash ints"]
    with pytest.raises(
        MarshalError, match=r"^Hash has more than 32 numeric keys with one Python hash value"
    ):
        marshal.loads(data)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=64), st.binary(max_size=64).map(lambda b: H + b)))
def test_arbitrary_bytes_give_a_value_or_marshal_error(data: bytes) -> None:
    try:
        marshal.loads(data)
    except MarshalError:
        pass

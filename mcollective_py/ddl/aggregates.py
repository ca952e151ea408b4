"""Aggregate summaries (``summarize do aggregate summary(:x) end``) computed like ``mco``.

:func:`summarize` feeds the reply data of every node (OK or failed, as Ruby does) to
the action's aggregate functions and returns one :class:`Summary` per function;
:func:`format_summaries` renders them exactly as ``RPC::Stats#text_for_aggregates``.

Functions (``aggregate/*.rb`` of MCollective 2.12.5 plus the widely installed
``boolean_summary`` plugin):

* ``summary(:x)`` -- count of each distinct value (Array values count each element;
  nil is skipped), most frequent first, printed ``"%<w>s = %s"`` with ``w`` the longest
  value's length;
* ``boolean_summary(:x, {:true => "yes", :false => "no"})`` -- the same for booleans,
  relabelled (default labels True/False, format ``"%5s = %s"``);
* ``average(:x)`` -- ``"Average of x: %f"``; Integer values average with Ruby's floor
  division;
* ``sum(:x)`` -- ``"Sum of x: %f"``.

A Hash second argument may carry ``:format``, a Ruby format string.  Ruby quirks kept:
a format given as ``aggregate fn(:x), :format => ".."`` is ignored; a value that
cannot be added (``nil``, a String) drops the function with "exception raised while
processing result data" (and, as Ruby iterates while deleting, the next function
misses that reply); ``average`` of no values fails "while summarizing"; a summary
with a ``nil`` key prints "No aggregate summary could be computed".  Where Ruby
would crash (a format that does not fit the values), the summary reports the failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mcollective_py.ddl.model import Action
from mcollective_py.ruby import values as rv
from mcollective_py.ruby.values import RubyHash
from mcollective_py.rubytypes import Symbol

__all__ = [
    "AggregateFunction",
    "Average",
    "BooleanSummary",
    "CORE_FUNCTIONS",
    "Sum",
    "Summary",
    "SummaryFunction",
    "format_summaries",
    "summarize",
]

_BOLD = "\x1b[1m"
_YELLOW = "\x1b[33m"
_RESET = "\x1b[0m"

_STARTUP_FAILED = "exception raised while processing startup hook"
_PROCESS_FAILED = "exception raised while processing result data"
_SUMMARIZE_FAILED = "exception raised while summarizing"


class AggregateError(Exception):
    """Raised by an aggregate function for a value or state it cannot handle."""


@dataclass(frozen=True)
class Summary:
    """One aggregate function's outcome for a request.

    ``text`` is what the function's result prints (Ruby ``Result#to_s``; lines joined
    with ``\\n``; empty means "No aggregate summary could be computed").  ``failure``
    is set (and ``text`` empty) when the function could not run; it is Ruby's
    wording, e.g. ``exception raised while processing result data``.
    """

    output: str
    display_as: str
    function: str
    text: str = ""
    failure: str | None = None


class AggregateFunction:
    """Base of aggregate functions: built once per request, fed every reply's value.

    Subclasses set ``kind`` (``"collection"``: ``value`` is a RubyHash of counts;
    ``"numeric"``: ``value`` is a number) in :meth:`startup`, accumulate in
    :meth:`process`, and may adjust in :meth:`finish`.  Raise any exception for a
    value they cannot take; the caller records the failure like Ruby.
    """

    kind = "numeric"

    def __init__(self, output: Any, arguments: Any, aggregate_format: str | None) -> None:
        self.output = output
        self.arguments = arguments
        self.format: Any = aggregate_format
        self.value: Any = None
        self.startup()

    def startup(self) -> None:
        raise NotImplementedError

    def process(self, value: Any) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Called once after the last reply (Ruby ``summarize``)."""

    def render(self) -> str:
        """Ruby ``Result#to_s`` of the finished function."""
        if self.format is None:
            raise AggregateError("No aggregate_format defined in ddl or aggregate function")
        if self.kind == "collection":
            counts: RubyHash = self.value
            if any(k is None for k in counts.keys()):
                return ""
            # Ruby: sort by count (glibc's stable merge sort), then reverse.
            ordered = sorted(counts.items(), key=lambda kv: kv[1])[::-1]
            text = "".join(_puts(rv.sprintf(self.format, [k, v])) for k, v in ordered)
            return text[:-1] if text.endswith("\n") else text
        if self.value is None:
            return ""
        return rv.sprintf(self.format, [self.value])


def _puts(line: str) -> str:
    return line if line.endswith("\n") else line + "\n"


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class SummaryFunction(AggregateFunction):
    """``summary``: counts of distinct values."""

    kind = "collection"

    def startup(self) -> None:
        self.value = RubyHash()
        if self.format is None:
            self.format = _CALCULATE

    def process(self, value: Any) -> None:
        if value is None:
            return
        for item in value if isinstance(value, list) else [value]:
            self.add(item)

    def add(self, value: Any) -> None:
        _count(self.value, value)

    def finish(self) -> None:
        if self.format is _CALCULATE:
            lengths = [_ruby_length(k) for k in self.value.keys()]
            width = str(max(lengths)) if lengths else ""
            self.format = f"%{width}s = %s"


_CALCULATE = object()


def _ruby_length(value: Any) -> int:
    if isinstance(value, (str, list, dict, RubyHash)):
        return len(value)
    return len(rv.to_s(value))


class BooleanSummary(SummaryFunction):
    """``boolean_summary``: counts of true/false, relabelled by the argument Hash."""

    def startup(self) -> None:
        self.value = RubyHash()
        labels = self.arguments
        if labels is None:
            labels = RubyHash([(True, "True"), (False, "False")])
        elif not isinstance(labels, RubyHash):
            raise AggregateError("boolean_summary labels must be a Hash")
        for flag in (True, False):
            key = Symbol("true" if flag else "false")
            if key in labels:
                labels[flag] = labels.delete(key)
        self.labels = labels
        if self.format is None:
            self.format = "%5s = %s"

    def add(self, value: Any) -> None:
        _count(self.value, self.labels.get(value))


def _count(counts: RubyHash, value: Any) -> None:
    """Ruby: ``keys.include?(v)`` (``==``) then ``hash[v] += 1`` (``eql?``) -- so ``1.0``
    after ``1`` is "included" but not found, and fails like Ruby's ``nil + 1``."""
    if any(rv.eq(key, value) for key in counts.keys()):
        current = counts.get(value)
        if current is None:
            raise AggregateError("undefined method `+' for nil:NilClass")
        counts[value] = current + 1
    else:
        counts[value] = 1


class Sum(AggregateFunction):
    """``sum``: total of numeric values."""

    def startup(self) -> None:
        self.value = 0
        if self.format is None:
            self.format = f"Sum of {rv.to_s(self.output)}: %f"

    def process(self, value: Any) -> None:
        if not _numeric(value):
            raise AggregateError(f"{rv.inspect(value)} can't be coerced into a number")
        self.value += value


class Average(Sum):
    """``average``: mean of numeric values (Integer floor division when all are Integers)."""

    def startup(self) -> None:
        self.value = 0
        self.count = 0
        if self.format is None:
            self.format = f"Average of {rv.to_s(self.output)}: %f"

    def process(self, value: Any) -> None:
        super().process(value)
        self.count += 1

    def finish(self) -> None:
        if isinstance(self.value, int):
            if self.count == 0:
                raise AggregateError("divided by 0")
            self.value = self.value // self.count
        else:
            self.value = self.value / self.count if self.count else float("nan")


#: Aggregate functions by (lower-case) name; Ruby capitalizes the name to find the class.
CORE_FUNCTIONS: Mapping[str, type[AggregateFunction]] = {
    "summary": SummaryFunction,
    "boolean_summary": BooleanSummary,
    "average": Average,
    "sum": Sum,
}


def _find_key(data: Mapping[Any, Any], key: Any) -> Any:
    """``data[key]`` with Ruby key identity when the exact key type is present."""
    for k, v in data.items():
        if rv.hash_key(k) == rv.hash_key(key):
            return v
    for k, v in data.items():
        if isinstance(k, str) and isinstance(key, str) and str.__str__(k) == str.__str__(key):
            return v
    return None


def summarize(
    action: Action,
    replies: Iterable[Mapping[Any, Any] | None],
    *,
    functions: Mapping[str, type[AggregateFunction]] | None = None,
) -> tuple[Summary, ...]:
    """Run ``action``'s aggregate functions over the reply ``data`` of every node.

    Pass the data of *all* replies (failed ones too: Ruby aggregates them, and their
    outputs hold the DDL defaults).  Returns the successful summaries sorted by output
    name, then the failures in the order they happened -- the order ``mco`` prints.
    ``functions`` replaces :data:`CORE_FUNCTIONS` (e.g. to add a third-party plugin).
    Returns ``()`` for an action without aggregates.
    """
    table = CORE_FUNCTIONS if functions is None else functions
    if not action.aggregates:
        return ()
    outputs = action.outputs
    running: list[tuple[str, AggregateFunction]] = []
    failures: list[Summary] = []

    def label(output: Any) -> str:
        for key, item in outputs.items():
            if rv.hash_key(key) == rv.hash_key(output):
                return item.display_as
        return rv.to_s(output)

    def fail(output: Any, fname: str, why: str) -> None:
        failures.append(Summary(rv.to_s(output), rv.to_s(output), fname, "", why))

    for call in action.aggregates:
        output = call.output
        if not any(rv.hash_key(k) == rv.hash_key(output) for k in outputs):
            fail(output, call.function, f"unspecified output '{rv.to_s(output)}' for the action")
            continue
        arguments: Any = call.args[1] if len(call.args) > 1 else None
        if arguments is not None and not isinstance(arguments, dict):
            return ()  # Ruby: Aggregate.new raises, summaries are disabled for the request
        fmt: Any = None
        if arguments is not None:
            arguments = RubyHash(list(arguments.items()))
            fmt = arguments.delete(Symbol("format"))
        cls = table.get(call.function.lower())
        try:
            if cls is None:
                raise AggregateError(
                    f"Aggregate function file '{call.function.lower()}.rb' cannot be loaded"
                )
            running.append((call.function, cls(output, arguments, fmt)))
        except Exception:  # noqa: BLE001 - Ruby rescues Exception here too
            fail(output, call.function, _STARTUP_FAILED)

    for data in replies:
        i = 0
        while i < len(running):
            fname, function = running[i]
            try:
                if data is None:
                    raise AggregateError("reply has no data")
                function.process(_find_key(data, function.output))
            except Exception:  # noqa: BLE001
                fail(function.output, fname, _PROCESS_FAILED)
                del running[i]
                i += 1  # Ruby deletes while iterating: the next function skips this reply
                continue
            i += 1

    done: list[Summary] = []
    for fname, function in running:
        try:
            function.finish()
            text = function.render()
        except Exception:  # noqa: BLE001 - includes a format that does not fit (RubyTypeError)
            fail(function.output, fname, _SUMMARIZE_FAILED)
            continue
        done.append(Summary(rv.to_s(function.output), label(function.output), fname, text))
    done.sort(key=lambda s: s.output)
    return tuple(done) + tuple(failures)


def format_summaries(summaries: Iterable[Summary], *, color: bool = True) -> str:
    """The aggregate block ``mco`` prints (``RPC::Stats#text_for_aggregates``).

    ``color`` adds the bold/yellow ANSI codes Ruby uses when color is on.
    """

    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    out: list[str] = []
    for summary in summaries:
        if summary.failure is not None:
            continue
        out.append(paint(_BOLD, f"Summary of {summary.display_as}:") + "\n\n")
        if summary.text != "":
            lines = summary.text.split("\n")
            while lines and lines[-1] == "":
                lines.pop()
            out.append(_puts("\n".join("   " + line for line in lines)))
        else:
            out.append(paint(_YELLOW, "     No aggregate summary could be computed") + "\n")
        out.append("\n")
    for summary in summaries:
        if summary.failure is None:
            continue
        out.append(paint(_BOLD, f"Summary of {summary.output}:") + "\n\n")
        out.append(paint(_YELLOW, f"     Could not compute summary - {summary.failure}") + "\n\n")
    return "".join(out)

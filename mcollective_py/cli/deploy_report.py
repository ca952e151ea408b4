"""``mco-py deploy report RUN``: the HTML run report (and the JUnit file) from a run journal.

``RUN`` is a journal file, or a run id looked up in the deploy state dir as
``<state-dir>/runs/<RUN>.jsonl`` (``--state-dir``, with the same default as ``deploy run``).  The page is
written to ``--output`` (default ``<RUN>.html`` in the current directory) atomically;
``--junit FILE`` also writes the run's JUnit XML; ``--load-samples FILE`` adds the
``time,requests,errors`` CSV to the timeline.  Exit codes: 0 written; 2 no such run, a file
that holds no deploy events, or bad load samples (nothing is written then).

The deploy command group registers this with :func:`register_report` (its own sub-parsers).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .common import Terminal

RUN_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
#: Journals larger than this are refused (a run writes a few hundred bytes per event).
MAX_JOURNAL_BYTES = 256 * 1024 * 1024


def register_report(deploy_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``report`` to the ``mco-py deploy`` sub-commands."""
    p = deploy_subparsers.add_parser(
        "report",
        help="write the HTML run report (and optionally JUnit XML) of a run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_ref", metavar="RUN", help="run id, or the path of a run journal")
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="the deploy state dir: journals are <DIR>/runs/<RUN>.jsonl (default: "
        "$MCO_PY_STATE_DIR, /var/lib/mco-py/deploy as root, else ~/.local/state/mco-py/deploy; "
        "the same as deploy run)",
    )
    p.add_argument("--output", "-o", metavar="FILE", help="report file (default: <RUN>.html)")
    p.add_argument("--junit", metavar="FILE", help="also write the run's JUnit XML here")
    p.add_argument(
        "--load-samples", metavar="FILE", help="time,requests,errors CSV to draw on the timeline"
    )
    p.set_defaults(run=run)
    return p


def runs_dir(args: argparse.Namespace) -> Path:
    """The driver's runs dir: ``<--state-dir or the default state dir>/runs``."""
    from ..orchestrate.journal import default_state_dir

    state_dir = getattr(args, "state_dir", None)
    return Path(state_dir or default_state_dir()) / "runs"


def _journal_path(ref: str, runs: Path) -> Path:
    given = Path(ref)
    if given.is_file():
        return given
    if not RUN_ID.match(ref):
        raise UsageError(
            f"no journal file {ref!r}, and it is not a run id (letters, digits, '.', '_', '-')"
        )
    path = runs / f"{ref}.jsonl"
    if not path.is_file():
        raise UsageError(
            f"no journal for run {ref!r}: {path} does not exist; pass the journal file, or "
            "--state-dir DIR (the one the run used)"
        )
    return path


def run(args: argparse.Namespace, term: Terminal) -> int:
    from ..orchestrate.subscribers import (
        events_from_journal,
        read_load_samples,
        render_junit,
        render_report,
    )
    from ..orchestrate.subscribers.junit import write_atomically

    # 1. read everything, so bad input writes nothing
    path = _journal_path(args.run_ref, runs_dir(args))
    if path.stat().st_size > MAX_JOURNAL_BYTES:
        raise UsageError(f"{path} is larger than {MAX_JOURNAL_BYTES} bytes; not a run journal?")
    with open(path, encoding="utf-8", errors="replace") as f:
        read = events_from_journal(f)
    if not read.events:
        raise UsageError(
            f"{path} holds no deploy events ({read.skipped} other lines); is it a run journal?"
        )
    samples = None
    if args.load_samples:
        try:
            text = Path(args.load_samples).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"cannot read load samples {args.load_samples}: {exc.strerror or exc}"
            ) from None
        samples = read_load_samples(text)
    run_id = read.events[0].run_id
    html = render_report(read.events, samples)
    junit = render_junit(read.events) if args.junit else None

    # 2. write
    output = Path(args.output or f"{path.stem}.html")
    write_atomically(output, html)
    term.out.write(f"report of run {run_id}: {output} ({len(read.events)} events")
    term.out.write(f", {read.skipped} other records skipped)\n" if read.skipped else ")\n")
    if junit is not None:
        write_atomically(Path(args.junit), junit)
        term.out.write(f"JUnit XML: {args.junit}\n")
    return 0

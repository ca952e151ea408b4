"""``mco-py release``: release data from the service catalog.

``mco-py release render SERVICE VERSION --env ENV`` renders the Hiera data of one release (the
``app_release`` parameters and the service's HAProxy pool) and writes it atomically under the
Hiera datadir.  ``--diff`` shows what would change and ``--check`` exits 1 when the files on
disk differ from the rendering; neither writes.  Exit codes: 0 done / up to date, 1 stale
(``--check``), 2 unknown service, version or environment, 3 bad catalog or Hiera config.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import Terminal


def register(sub: Any) -> None:
    p = sub.add_parser(
        "release",
        help="release data: render per-release Hiera data from the service catalog",
        description=__doc__,
    )
    rsub = p.add_subparsers(dest="release_command", metavar="SUBCOMMAND", required=True)
    r = rsub.add_parser(
        "render",
        help="render the Hiera data of one release",
        description="Render the Hiera data of release VERSION of SERVICE for environment ENV.",
    )
    r.add_argument("service", metavar="SERVICE", help="service name from the catalog, e.g. shop")
    r.add_argument(
        "version",
        metavar="VERSION",
        help="a version listed under the service's releases, e.g. 1.4.2",
    )
    r.add_argument(
        "--env", "-e", dest="env", required=True, metavar="ENV", help="environment, e.g. lab"
    )
    r.add_argument(
        "--catalog",
        default="services.yaml",
        metavar="FILE",
        help="service catalog (default: services.yaml)",
    )
    r.add_argument(
        "--hiera-dir",
        default="hiera",
        metavar="DIR",
        help="directory holding hiera.yaml (default: hiera)",
    )
    r.add_argument(
        "--diff",
        action="store_true",
        help="show what would change as a unified diff; write nothing",
    )
    r.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files on disk are stale"
    )
    r.set_defaults(run=run)


def run(args: argparse.Namespace, term: Terminal) -> int:
    from ..release import data_dir, load_catalog, plan_writes, render_release, write_files

    # 1. everything that can fail on bad input, before touching the disk
    catalog = load_catalog(args.catalog)
    files = render_release(catalog, args.service, args.version, args.env)
    root = data_dir(args.hiera_dir)
    changes = plan_writes(root, files)
    stale = [c for c in changes if c.status != "unchanged"]
    command = f"mco-py release render {args.service} {args.version} --env {args.env}"

    # 2. --diff / --check only look
    if args.diff:
        for c in stale:
            term.out.write(c.diff())
    if args.check:
        for c in changes:
            label = (
                "up to date"
                if c.status == "unchanged"
                else ("missing" if c.status == "new" else "stale")
            )
            term.out.write(f"{label:<11}{c.path}\n")
        if stale:
            term.err.write(
                f"release data of {args.service} {args.version} in {args.env} is stale; run: {command}\n"
            )
            return 1
        return 0
    if args.diff:
        return 0

    # 3. write (atomically, all or nothing until the renames)
    write_files(changes)
    term.out.write(f"{args.service} {args.version} in {args.env}:\n")
    for c in changes:
        label = {"new": "created", "changed": "updated", "unchanged": "unchanged"}[c.status]
        term.out.write(f"  {label:<10}{c.path}\n")
    return 0

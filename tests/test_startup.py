"""Start-up: what a client command imports (module sets, never timings; the times are in
bench/startup.py and docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import mcollective_py.ddl as ddl_pkg
import mcollective_py.filter as filter_pkg

#: imported by nothing on a direct ``rpc ... -I node`` path (each cost start-up time)
NOT_ON_THE_DIRECT_PATH = (
    "asyncio",  # pika's asyncio adapter (connectors/pika_import.py)
    "importlib.metadata",  # entry-point scan, only for a plugin that is not built in
    "regex",  # only when a Ruby regex is matched
    "mcollective_py.ddl.parser",  # only on a DDL cache miss
    "mcollective_py.ddl.lexer",
    "mcollective_py.ddl.choria",
    "mcollective_py.ddl.doc",
    "mcollective_py.filter.compound",  # node-side matching
    "mcollective_py.filter.match",
    "difflib",  # only for an unknown config key's "did you mean"
    "random",  # only for --limit-nodes
)


def _run(code: str, **env: str) -> dict[str, object]:
    r = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_direct_rpc_path_imports_only_what_it_uses(tmp_path: object) -> None:
    """Everything a direct ``mco-py rpc rpcutil ping -I node`` builds before it touches the
    broker: CLI, config, client, the rabbitmq connector and psk provider through the plugin
    table, a request filter, and the rpcutil DDL (warm cache)."""
    code = (
        "import sys, json\n"
        "from mcollective_py.cli import main, rpc, agent_ddl, console\n"
        "from mcollective_py import client, plugins, config\n"
        "from mcollective_py.filter import Filter\n"
        "from mcollective_py.ddl import load_agent_ddl, prepare_request\n"
        "plugins._load(plugins.BUILTIN[plugins.CONNECTORS]['rabbitmq'])\n"
        "plugins._load(plugins.BUILTIN[plugins.SECURITY]['psk'])\n"
        "Filter.from_cli(identity=['node1'])\n"
        "d = load_agent_ddl('rpcutil')\n"
        "prepare_request(d, 'ping', [])\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    cache = str(tmp_path)
    _run(code, MCO_PY_CACHE_DIR=cache)  # warms the DDL cache
    loaded = set(_run(code, MCO_PY_CACHE_DIR=cache))  # type: ignore[arg-type]
    assert "pika" in loaded and "mcollective_py.connectors.rabbitmq" in loaded
    assert sorted(loaded & set(NOT_ON_THE_DIRECT_PATH)) == []


def test_pika_is_imported_without_its_asyncio_adapter() -> None:
    got = _run(
        "import sys, json\n"
        "import mcollective_py.connectors.rabbitmq\n"
        "import pika\n"
        "before = 'asyncio' in sys.modules\n"
        "names = [pika.BlockingConnection.__name__, pika.SelectConnection.__name__,\n"
        "         pika.BaseConnection.__name__, pika.adapters.BlockingConnection.__name__]\n"
        "late = pika.adapters.AsyncioConnection.__name__  # still there, on use\n"
        "print(json.dumps([before, names, late, 'asyncio' in sys.modules]))\n"
    )
    assert got == [
        False,
        ["BlockingConnection", "SelectConnection", "BaseConnection", "BlockingConnection"],
        "AsyncioConnection",
        True,
    ]


def test_an_unknown_pika_version_gets_the_ordinary_import() -> None:
    got = _run(
        "import sys, json\n"
        "from mcollective_py.connectors import pika_import\n"
        "pika_import.LEAN_PIKA = ('0.0.',)\n"
        "pika = pika_import.load()\n"
        "print(json.dumps(['asyncio' in sys.modules, pika.BlockingConnection.__name__]))\n"
    )
    assert got == [True, "BlockingConnection"]


@pytest.mark.parametrize("package", [ddl_pkg, filter_pkg], ids=lambda p: p.__name__)
def test_lazy_packages_export_every_name(package: object) -> None:
    for name in package.__all__:  # type: ignore[attr-defined]
        assert getattr(package, name) is not None, name
    assert set(package.__all__) <= set(dir(package))  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        package.nope  # type: ignore[attr-defined]  # noqa: B018


def test_lazy_re_is_the_compiled_pattern_once_used() -> None:
    import re

    from mcollective_py.lazy import lazy_re

    lazy = lazy_re(r"^(a+)(b)?$", re.I)
    assert "match" not in vars(lazy)  # nothing compiled yet
    m = lazy.match("AAb")
    assert m is not None and m.groups() == ("AA", "b")
    assert vars(lazy)["match"].__self__ is re.compile(r"^(a+)(b)?$", re.I)  # bound once
    assert lazy.sub("x", "aa") == "x" and lazy.pattern == r"^(a+)(b)?$" and lazy.groups == 2
    assert [p.fullmatch("ab") is not None for p in (lazy, lazy_re("a"))] == [True, False]

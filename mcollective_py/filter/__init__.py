"""MCollective request filters: CLI parsing, the wire form, and node-side matching.

A :class:`Filter` says which nodes a request is for.  It has five parts, each a tuple:

* ``identity`` — node names; ``"/re/"`` strings are regexes, and a Ruby :class:`Regexp`
  object may arrive on the wire (``mco rpc --limit-nodes`` sends one);
* ``cf_class`` — configuration-management classes (``classes.txt``), ``"/re/"`` allowed;
* ``fact`` — :class:`FactFilter` comparisons (``-F os=Debian``, ``-F mem>=1024``);
* ``agent`` — agent names, ``"/re/"`` allowed;
* ``compound`` — ``-S`` expressions, each a call stack of :class:`CompoundToken`.

The jobs live in one module each, all reproducing Ruby MCollective 2.12.5 (Debian) exactly,
quirks included (see the test golden data under ``tests/golden/filter/``); this package
re-exports their public names:

* :mod:`.model` -- the data model and its wire form;
* :mod:`.parse` -- the CLI flags (``-F -W -S`` text to filter parts);
* :mod:`.node` and :mod:`.match` -- node-side matching;
* :mod:`.compound` -- compound expressions evaluated on a node.

In detail:

1. Parsing the CLI flags ``-I -C -F -A -W -S`` (:func:`parse_fact`, :func:`parse_with`,
   :func:`parse_compound`, :meth:`Filter.from_cli`, :meth:`Filter.from_flags`), as
   ``Util.parse_fact_string``, ``Optionparser`` and ``Matcher::Parser``/``Scanner`` do.
   Bad input raises :class:`~mcollective_py.errors.UsageError`.
2. The wire form (:meth:`Filter.to_wire`, :meth:`Filter.from_wire`): a dict with String keys
   ``fact, cf_class, agent, identity, compound`` in Ruby's order; fact entries are hashes
   with Symbol keys ``:fact, :value, :operator``.  Malformed wire input raises
   :class:`~mcollective_py.errors.SerializationError` (it arrived in a message body).
3. Node-side matching (:func:`matches`, :func:`check`), a pure function reproducing
   ``Security::Base#validate_filter?`` and the ``Util.has_*`` helpers it calls.  Where Ruby
   would raise (a bad regex, ``Integer("08")``, a compound that is not valid Ruby), the
   request is dropped by the Ruby daemon; here the verdict is simply "no match" and
   :attr:`Verdict.error` says why.  Matching never raises.

Ruby regexes go through :mod:`mcollective_py.ruby.regex` (one translation for filters, DDL
validation and policy; every match has a time budget, and running out of it is a Ruby-style
failure: no match, with :attr:`Verdict.error` saying why); nothing is ever ``eval``-ed: the compound evaluator is a small parser of its own.

Where we knowingly differ from Ruby:

* :meth:`Filter.from_wire` is lenient for non-Ruby clients: Symbol top-level keys and
  String-keyed fact entries are honoured (Ruby ignores the first and fails the second).
  Only identities may be Regexp objects (Ruby would also take them for agents and classes).
* A :class:`Filter` does not remember a wire hash that was "empty but not Ruby's empty
  filter" (e.g. ``{"agent"=>[]}``, which Ruby rejects); give :func:`check` the raw hash.
* Regex syntax we cannot run (class intersection ``&&``, ``(?~..)``; see
  :mod:`mcollective_py.ruby.regex`) makes the test fail, as an invalid regex does in Ruby;
  so does a match that runs out of its time budget (Ruby would keep running).
* Any exception from the ``data_plugin`` callback makes that compound stack false (Ruby does
  so for a missing plugin; a failing Ruby plugin drops the request: no match either way).
* Compound expressions nested thousands deep are refused (no match).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from ..ruby.regex import compile_ruby_regex
    from .compound import eval_compound
    from .match import Verdict, check, matches
    from .model import COMPOUND_KINDS, CompoundToken, DataPlugin, FactFilter, Filter, FStatement
    from .node import normalize_facts
    from .parse import parse_compound, parse_fact, parse_with

#: public name -> the submodule that defines it (imported on first use: start-up time)
_WHERE = {
    "COMPOUND_KINDS": "model",
    "CompoundToken": "model",
    "DataPlugin": "model",
    "FStatement": "model",
    "FactFilter": "model",
    "Filter": "model",
    "Verdict": "match",
    "check": "match",
    "compile_ruby_regex": "mcollective_py.ruby.regex",
    "eval_compound": "compound",
    "matches": "match",
    "normalize_facts": "node",
    "parse_compound": "parse",
    "parse_fact": "parse",
    "parse_with": "parse",
}
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)


__all__ = [
    "COMPOUND_KINDS",
    "CompoundToken",
    "DataPlugin",
    "FStatement",
    "FactFilter",
    "Filter",
    "Verdict",
    "check",
    "compile_ruby_regex",
    "eval_compound",
    "matches",
    "normalize_facts",
    "parse_compound",
    "parse_fact",
    "parse_with",
]

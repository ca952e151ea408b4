"""Ruby semantics, in one place: what MCollective's Ruby code does that Python does not.

* :mod:`.regex` -- Ruby (Onigmo) regexes translated once and matched with a time budget;
  used by filters, DDL validation, policy and healthcheck patterns.
* :mod:`.values` -- Ruby value rules: ``to_s``/``inspect``, ``==``/``eql?``, ``Integer()``
  and ``Float()``, ``String#to_i``, ``split``/``chomp``, ``format``.
* :mod:`.inspect` -- ``inspect``/``pretty_inspect`` that stop at a budget while they walk,
  so a value built from shared references cannot blow up rendering.

The Python stand-ins for Ruby values themselves (Symbol, Regexp, ...) stay in
:mod:`mcollective_py.rubytypes`: the serializers need them and nothing else from here.
"""

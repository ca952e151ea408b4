"""The ``mco-py`` command line (only this package prints or exits).

Importing it installs :mod:`.codecache` (the dataclasses' generated code, compiled once
and kept between runs: start-up time) before any of the package's dataclasses exist.
"""

from . import codecache

codecache.install()

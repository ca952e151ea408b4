"""Build hook for the optional compiled Marshal decoder; all metadata is in setup.cfg.

``mcollective_py._cmarshal`` needs a C compiler and Python's headers (Debian: python3-dev).
Without them the build skips it (``optional=True``) and ``marshal.loads`` runs in pure Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "mcollective_py._cmarshal",
            ["mcollective_py/_cmarshal.c"],
            optional=True,
        )
    ]
)

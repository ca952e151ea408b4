"""Serializers: how a security provider turns Ruby values into bytes and back.

``Serializer`` is a two-verb protocol.  ``MARSHAL`` (Ruby Marshal 4.8) is what every
MCollective security plugin uses by default and the only one psk knows.  Errors from the
codec surface as :class:`~mcollective_py.errors.MarshalError` (a bad payload) or
:class:`SerializationError` (an unsupported value).
"""

from __future__ import annotations

from typing import Any, Protocol

from . import marshal


class Serializer(Protocol):
    """Encode a Ruby-shaped value to bytes and back. ``loads`` raises only
    MarshalError/SerializationError on bad input."""

    name: str

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class MarshalSerializer:
    """Ruby Marshal 4.8 through our own codec (``marshal.py``)."""

    name = "marshal"

    def dumps(self, obj: Any) -> bytes:
        return marshal.dumps(obj)

    def loads(self, data: bytes) -> Any:
        return marshal.loads(data)


MARSHAL = MarshalSerializer()

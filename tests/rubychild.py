"""A long-lived real ``ruby`` child for tests that compare us with Ruby value by value.

Frames on stdin: a 4-byte big-endian length, a 1-byte op, the payload.  Frames on stdout: a
4-byte length, ``+`` (answer) or ``!`` (Ruby raised: the text of the exception), the bytes.
Each test supplies the Ruby ``handle(op, payload)`` that computes an answer; this module owns
the framing on both sides.
"""

from __future__ import annotations

import struct
import subprocess

_SERVE = r"""
$stdin.binmode
$stdout.binmode
while (hdr = $stdin.read(5)) && hdr.bytesize == 5
  len, op = hdr.unpack("NC")
  payload = $stdin.read(len)
  begin
    out = handle(op, payload)
    status = "+"
  rescue Exception => e
    out = "#{e.class}: #{e.message}"
    status = "!"
  end
  out = out.b
  $stdout.write([out.bytesize].pack("N") + status.b + out)
  $stdout.flush
end
"""


class RubyChild:
    """``ruby -e <handlers + frame loop>``; ``handlers`` must define ``handle(op, payload)``."""

    def __init__(self, ruby: str, handlers: str) -> None:
        self.proc = subprocess.Popen(
            [ruby, "-e", handlers + _SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def call(self, op: bytes, payload: bytes) -> tuple[bool, bytes]:
        """Send one frame; returns (Ruby answered without raising, the bytes)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(struct.pack(">I", len(payload)) + op + payload)
        self.proc.stdin.flush()
        header = self.proc.stdout.read(5)
        assert len(header) == 5, "ruby child died"
        (length,) = struct.unpack(">I", header[:4])
        return header[4:5] == b"+", self.proc.stdout.read(length)

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()

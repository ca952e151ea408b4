"""The whole exception tree of mcollective-py, with the exit code each one maps to.

::

    MCollectiveError                 exit 1   base; never raised directly
    ├── UsageError                   exit 2   bad command line (unknown flag, bad key=value)
    │   └── ValidationError          exit 2   request inputs refused by a DDL (all problems at once)
    ├── DDLError                     exit 2   a .ddl file could not be parsed or is inconsistent
    ├── MarshalError                 exit 2   bytes are not valid Ruby Marshal 4.8 (or exceed limits)
    ├── SerializationError           exit 2   a value cannot be serialized / a body cannot be decoded
    ├── RegexTimeout                 exit 2   a Ruby regex ran out of its time budget
    ├── SecurityError                exit 1   a message failed its security check
    │   ├── DigestMismatch                    psk hash / ssl signature does not verify
    │   ├── MessageExpired                    msgtime + ttl is in the past
    │   └── InvalidCallerId                   callerid does not match ``kind=value``
    ├── ConfigError                  exit 3   config file missing/unreadable/invalid value
    ├── TransportError               exit 3   broker unreachable, connection lost, publish failed
    ├── DeployError                  exit 1   ``mco-py deploy``: a run could not go on
    │   ├── PlanRefused              exit 2   the plan breaks a safety rule (capacity floor, ...)
    │   ├── LeaseHeld                exit 2   another run holds the service+environment lease
    │   ├── RunNotFound              exit 2   no journal for that run id
    │   └── JournalError             exit 3   the state dir or a journal cannot be read/written
    └── LabError                     exit 3   the local lab could not be stood up, driven or stopped

Rules: only ``cli/`` turns these into exit codes and messages (``exc.exit_code``); every
message says what was wrong, with which value, and what to try.  Foreign exceptions
(pika, socket, yaml) are translated once, at the boundary where they arise.
"""

from __future__ import annotations

from collections.abc import Sequence


class MCollectiveError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 1


class UsageError(MCollectiveError):
    """The command line was wrong: unknown option, malformed ``key=value``, bad filter."""

    exit_code = 2


class ValidationError(UsageError):
    """Request inputs were refused by the agent's DDL.

    ``problems`` holds one human-readable line per problem; ``str()`` joins them.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


class DDLError(MCollectiveError):
    """A DDL file could not be parsed or describes an invalid agent."""

    exit_code = 2


class MarshalError(MCollectiveError):
    """Bytes are not valid Ruby Marshal 4.8, use an unsupported type, or exceed a limit."""

    exit_code = 2


class SerializationError(MCollectiveError):
    """A value could not be serialized, or a message body could not be decoded."""

    exit_code = 2


class RegexTimeout(MCollectiveError):
    """A Ruby regex (filter, DDL validation, policy, healthcheck) ran out of its time budget.

    ``source`` is the pattern, ``seconds`` the budget it exceeded.
    """

    exit_code = 2

    def __init__(self, source: str, seconds: float) -> None:
        self.source = source
        self.seconds = seconds
        super().__init__(
            f"regex /{source[:200]}/ took longer than {seconds:g} s and was abandoned; "
            "simplify it (avoid nested or overlapping repetition such as (a|aa)+)"
        )


class SecurityError(MCollectiveError):
    """A message failed its security check (digest, signature, ttl, callerid)."""


class DigestMismatch(SecurityError):
    """The psk digest or ssl signature of a message does not verify."""


class MessageExpired(SecurityError):
    """A message is older than its TTL."""


class InvalidCallerId(SecurityError):
    """A callerid does not look like ``kind=value``."""


class ConfigError(MCollectiveError):
    """Configuration is missing, unreadable or holds an invalid value."""

    exit_code = 3


class TransportError(MCollectiveError):
    """The broker could not be reached, the connection was lost, or a publish failed."""

    exit_code = 3


class DeployError(MCollectiveError):
    """A deploy run could not go on (``mco-py deploy``); the message says why and what to try."""


class PlanRefused(DeployError):
    """The plan breaks a safety rule (it would empty the pool, a budget is negative, ...)."""

    exit_code = 2


class LeaseHeld(DeployError):
    """Another run holds the lease of the same service and environment."""

    exit_code = 2


class RunNotFound(DeployError):
    """No journal exists for the run id given to ``status``/``resume``/``abort``."""

    exit_code = 2


class JournalError(DeployError):
    """The state dir, a journal or a lease file cannot be read or written."""

    exit_code = 3


class LabError(MCollectiveError):
    """The local lab (``mco-py lab``) could not start, drive or stop one of its parts: the
    message names the part, what it did, and where its log is."""

    exit_code = 3

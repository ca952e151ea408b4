"""The DDL model: what a ``.ddl`` file declares, as frozen dataclasses.

The model holds what Ruby's ``MCollective::DDL`` classes hold after loading the same
file (``meta``, ``entities``, ``usage``, ``requirements``), typed:

* :class:`AgentDDL` -- ``metadata`` + ``action`` blocks (:class:`Action`, with
  :class:`Input`, :class:`Output`, :class:`AggregateCall`).
* :class:`DataDDL` -- ``metadata`` + one ``dataquery`` (:class:`DataQuery`).
* :class:`DiscoveryDDL` -- ``metadata`` + ``discovery do capabilities [...] end``.
* :class:`PluginDDL` -- validator, aggregate, connector...: ``metadata``/``usage`` only.

Keys keep their Ruby type: an input declared ``input :fact`` has ``key ==
Symbol("fact")``; ``input "fact"`` has a plain ``str`` key.  (``Symbol`` compares equal
to its text, so ``action.inputs["fact"]`` finds either.)  Values from the file
(defaults, list entries, aggregate arguments) are plain Python stand-ins of Ruby values
(see :mod:`mcollective_py.rubytypes`); treat them as read-only.

Where Ruby accepts any value, the parser is stricter (and says so in the error):
descriptions, prompts and metadata texts must be Strings, ``:type`` a Symbol,
``:maxlength`` an Integer, ``:list`` an Array, ``:optional`` true/false.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcollective_py.errors import ValidationError
from mcollective_py.rubytypes import Regexp, Symbol

__all__ = [
    "DISPLAY_MODES",
    "INPUT_TYPES",
    "Action",
    "AgentDDL",
    "AggregateCall",
    "DDL",
    "DataDDL",
    "DataQuery",
    "DiscoveryDDL",
    "Input",
    "Metadata",
    "Output",
    "PluginDDL",
]

#: ``display`` preferences Ruby accepts (``flatten`` is deprecated, printed like ``always``).
DISPLAY_MODES = ("ok", "failed", "flatten", "always")

#: Input types with defined validation in MCollective 2.12.5.  Others (``hash``,
#: ``array``, ``any``...) load fine but every value is refused, as in Ruby.
INPUT_TYPES = ("string", "list", "boolean", "integer", "float", "number")

#: Validation given for a ``:string`` input: a Ruby regex source, a Regexp literal,
#: a named validator (``Symbol("shellsafe")``), a list (one of), or None (no check).
Validation = str | Regexp | Symbol | tuple[Any, ...] | None


@dataclass(frozen=True)
class Metadata:
    """``metadata :name => .., :description => .., ...`` (all seven keys are required)."""

    name: str
    description: str
    author: str
    license: str
    version: str
    url: str
    timeout: int | float
    #: any other keys given, in file order (Symbol keys as in the file)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Input:
    """One ``input :key, :prompt => .., :type => .., ...`` declaration."""

    key: str
    prompt: str
    description: str
    type: str
    #: ``None`` when the DDL did not say (data DDLs); agent DDLs must say.
    optional: bool | None
    default: Any = None
    validation: Validation = None
    maxlength: int | None = None
    list: tuple[Any, ...] | None = None

    @property
    def name(self) -> str:
        """The key as plain text."""
        return str.__str__(self.key)

    @property
    def required(self) -> bool:
        """True unless ``:optional`` is true (Ruby: ``unless input[key][:optional]``)."""
        return not self.optional


@dataclass(frozen=True)
class Output:
    """One ``output :key, :description => .., :display_as => ..`` declaration.

    A ``:type`` given in the DDL is dropped, as Ruby 2.12.5 drops it.
    """

    key: str
    description: str
    display_as: str
    default: Any = None

    @property
    def name(self) -> str:
        """The key as plain text."""
        return str.__str__(self.key)


@dataclass(frozen=True)
class AggregateCall:
    """One ``aggregate fn(:output, {...})`` line of a ``summarize`` block.

    ``function`` is the name as written (``summary``, ``average``, ``sum``,
    ``boolean_summary``, or a third-party plugin); ``args`` are its arguments as given
    (normally the output key, then an optional Hash such as ``{:format => "%d"}``).
    ``format`` is only set by the form ``aggregate fn(:x), :format => ".."``, which
    Ruby stores but never uses.
    """

    function: str
    args: tuple[Any, ...]
    format: str | None = None

    @property
    def output(self) -> Any:
        """The output key being aggregated (``None`` if there are no arguments)."""
        return self.args[0] if self.args else None


@dataclass(frozen=True)
class Action:
    """An ``action "name", :description => .. do ... end`` block."""

    name: str
    description: str
    display: str = "failed"
    inputs: Mapping[str, Input] = field(default_factory=dict)
    outputs: Mapping[str, Output] = field(default_factory=dict)
    #: ``None`` when the action has no ``aggregate`` call (Ruby: no ``:aggregate`` key)
    aggregates: tuple[AggregateCall, ...] | None = None


@dataclass(frozen=True)
class DataQuery:
    """A data plugin's ``dataquery :description => .. do ... end`` block."""

    description: str
    inputs: Mapping[str, Input] = field(default_factory=dict)
    outputs: Mapping[str, Output] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class DDL:
    """What every DDL has: its plugin kind and name, metadata, usage and requirements."""

    kind: str
    name: str
    metadata: Metadata
    usage: str = ""
    #: ``requires :mcollective => "2.2.1"`` -> ``{"mcollective": "2.2.1"}``
    requirements: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None

    @property
    def timeout(self) -> int | float:
        """The plugin timeout from the metadata (seconds)."""
        return self.metadata.timeout


@dataclass(frozen=True, kw_only=True)
class AgentDDL(DDL):
    """An agent DDL: its actions by name, in file order."""

    actions: Mapping[str, Action] = field(default_factory=dict)

    def action(self, name: str) -> Action:
        """The action called ``name``.

        Raises :class:`~mcollective_py.errors.ValidationError` naming the known actions
        when there is none (Ruby refuses such a request before sending it).
        """
        found = self.actions.get(name)
        if found is None:
            known = ", ".join(sorted(self.actions)) or "none"
            raise ValidationError(
                [
                    f"action {name!r} is not declared in the {self.name} DDL; "
                    f"use one of: {known} (see 'plugin doc agent/{self.name}')"
                ]
            )
        return found


@dataclass(frozen=True, kw_only=True)
class DataDDL(DDL):
    """A data plugin DDL (``None`` query when the file has no ``dataquery`` block)."""

    query: DataQuery | None = None


@dataclass(frozen=True, kw_only=True)
class DiscoveryDDL(DDL):
    """A discovery plugin DDL; ``capabilities`` is None without a ``discovery`` block."""

    capabilities: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class PluginDDL(DDL):
    """Any other plugin DDL (validator, aggregate, connector...): metadata only."""

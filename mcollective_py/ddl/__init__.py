"""DDL files: parse, model, validate requests, aggregate replies, document, export.

The functions a client or node calls::

    ddl = load_agent_ddl("haproxy", libdirs)             # find + parse (cached)
    data = prepare_request(ddl, "disable", ["server=web1"])  # mco rpc k=v -> typed,
                                                          # defaults, validated
    problems = request_problems(ddl, "disable", data)     # node side; Ruby's statusmsg
    statusmsg = ruby_rejection(ddl, "disable", data)      #   is problems[0].ruby_message
    summaries = summarize(ddl.actions["disable"], [reply_data, ...])
    text = format_summaries(summaries)                    # what mco prints
    plugin_doc(ddl)                                       # mco plugin doc agent/haproxy
    to_choria_json(ddl)                                   # Choria JSON DDL

Parsing never evaluates code: a tokenizer and parser read the Ruby subset DDLs use
(see :mod:`.parser`) and :mod:`.dsl` applies Ruby MCollective's DSL rules.

Names are imported from their submodule on first use (PEP 562), so a command that only
loads a DDL and validates a request never imports the exporters, the documenter or (with
a warm DDL cache, :mod:`.loader`) the parser: start-up time, ``bench/startup.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcollective_py.lazy import lazy_exports

if TYPE_CHECKING:
    from mcollective_py.ddl.aggregates import (
        CORE_FUNCTIONS,
        AggregateFunction,
        Summary,
        format_summaries,
        summarize,
    )
    from mcollective_py.ddl.choria import CHORIA_AGENT_SCHEMA, to_choria_json
    from mcollective_py.ddl.doc import plugin_doc
    from mcollective_py.ddl.dsl import MCOLLECTIVE_VERSION, parse_ddl
    from mcollective_py.ddl.loader import (
        clear_cache,
        find_ddl,
        load_agent_ddl,
        load_ddl,
        load_ddl_file,
        search_path,
    )
    from mcollective_py.ddl.model import (
        DDL,
        Action,
        AgentDDL,
        AggregateCall,
        DataDDL,
        DataQuery,
        DiscoveryDDL,
        Input,
        Metadata,
        Output,
        PluginDDL,
    )
    from mcollective_py.ddl.request import (
        Problem,
        apply_defaults,
        coerce_cli_arguments,
        parse_cli_argument,
        prepare_request,
        reply_defaults,
        request_problems,
        ruby_rejection,
        validate_request,
    )
    from mcollective_py.ddl.validators import CORE_VALIDATORS, Validator

#: public name -> the submodule that defines it
_WHERE = {
    "Action": "model",
    "AgentDDL": "model",
    "AggregateCall": "model",
    "AggregateFunction": "aggregates",
    "CHORIA_AGENT_SCHEMA": "choria",
    "CORE_FUNCTIONS": "aggregates",
    "CORE_VALIDATORS": "validators",
    "DDL": "model",
    "DataDDL": "model",
    "DataQuery": "model",
    "DiscoveryDDL": "model",
    "Input": "model",
    "MCOLLECTIVE_VERSION": "dsl",
    "Metadata": "model",
    "Output": "model",
    "PluginDDL": "model",
    "Problem": "request",
    "Summary": "aggregates",
    "Validator": "validators",
    "apply_defaults": "request",
    "clear_cache": "loader",
    "coerce_cli_arguments": "request",
    "find_ddl": "loader",
    "format_summaries": "aggregates",
    "load_agent_ddl": "loader",
    "load_ddl": "loader",
    "load_ddl_file": "loader",
    "parse_cli_argument": "request",
    "parse_ddl": "dsl",
    "plugin_doc": "doc",
    "prepare_request": "request",
    "reply_defaults": "request",
    "request_problems": "request",
    "ruby_rejection": "request",
    "search_path": "loader",
    "summarize": "aggregates",
    "to_choria_json": "choria",
    "validate_request": "request",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

__all__ = [
    "CHORIA_AGENT_SCHEMA",
    "CORE_FUNCTIONS",
    "CORE_VALIDATORS",
    "DDL",
    "MCOLLECTIVE_VERSION",
    "Action",
    "AgentDDL",
    "AggregateCall",
    "AggregateFunction",
    "DataDDL",
    "DataQuery",
    "DiscoveryDDL",
    "Input",
    "Metadata",
    "Output",
    "PluginDDL",
    "Problem",
    "Summary",
    "Validator",
    "apply_defaults",
    "clear_cache",
    "coerce_cli_arguments",
    "find_ddl",
    "format_summaries",
    "load_agent_ddl",
    "load_ddl",
    "load_ddl_file",
    "parse_cli_argument",
    "parse_ddl",
    "plugin_doc",
    "prepare_request",
    "reply_defaults",
    "request_problems",
    "ruby_rejection",
    "search_path",
    "summarize",
    "to_choria_json",
    "validate_request",
]

"""The agents this package ships for zero-downtime delivery, one module each:

* :mod:`.haproxy` -- on load balancers: move servers in and out of HAProxy pools through the
  runtime API (status, enable, disable, drain, set_weight, wait_for_state, to_maintenance,
  to_online);
* :mod:`.healthcheck` -- on app nodes: http, tcp, command, smoke-test and version checks;
* :mod:`.deploy` -- on app nodes: fetch a release artifact (pull), activate it atomically,
  roll back, report, clean up, apply Puppet for it.

Each agent is a thin :class:`~mcollective_py.server.agent.Agent` over pure functions (parsing,
deciding what to do) and small I/O classes, so the decisions are tested with golden data and
the I/O against real HAProxy, HTTP servers and Puppet.  Their DDLs are ``ddl/<name>.ddl``;
the node finds the classes through the ``mcollective_py.agents`` entry points.
"""

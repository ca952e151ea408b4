# @summary One agent on a node: its DDL and the Ruby shim that hands its actions to Python.
#
# Writes `LIBDIR/mcollective/agent/NAME.ddl` (from this module's `files/ddl/NAME.ddl`, a copy
# of the repository's `ddl/`) and `NAME.rb`, a Ruby agent whose every DDL action runs
# `command + [NAME, request_file, reply_file]` (see the template for the file protocol).
#
# @example
#   mcollective_py::agent { 'haproxy':
#     libdir  => '/usr/share/mcollective/plugins',
#     command => ['/opt/mcollective-py/bin/python', '-m', 'mcollective_py.server.shims'],
#   }
#
# @param libdir
#   The MCollective libdir.
# @param command
#   The command (and its first arguments) the shim runs for every action.
# @param ddl
#   The DDL text; this module's copy of the agent's DDL when not given.
define mcollective_py::agent (
  Mcollective_py::Path $libdir,
  Array[String[1], 1] $command,
  Optional[String[1]] $ddl = undef,
) {
  if $title !~ Mcollective_py::Agent_name {
    fail("mcollective_py::agent: invalid agent name '${title}'")
  }
  $dir = "${libdir}/mcollective/agent"
  # A Ruby array literal of single-quoted strings (\ and ' escaped).
  $literal = $command.map |$word| {
    $escaped = $word.regsubst('([\\\\\'])', '\\\\\\1', 'G')
    "'${escaped}'"
  }.join(', ')

  $ddl_text = $ddl ? {
    undef   => file("mcollective_py/ddl/${title}.ddl"),
    default => $ddl,
  }

  file { "${dir}/${title}.ddl":
    ensure  => file,
    mode    => '0644',
    content => $ddl_text,
  }

  file { "${dir}/${title}.rb":
    ensure  => file,
    mode    => '0644',
    content => epp('mcollective_py/agent_shim.rb.epp', {
        'agent'           => $title,
        'class_name'      => $title.capitalize,
        'command_literal' => $literal,
    }),
  }
}

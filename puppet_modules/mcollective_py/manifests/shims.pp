# @summary Ruby shims for Debian's mcollectived, written by `mco-py shim build` when needed.
#
# @api private
#
# Declared by `mcollective_py` with `daemon => mcollectived`, whose parameters it reads.
#
# The product has the one shim writer: `VENV/bin/mco-py shim build AGENT... --out DIR -c
# SERVER_CFG [--command CMD]` writes `DIR/mcollective/agent/AGENT.rb` and `AGENT.ddl`. This
# class runs it from one exec that is idempotent:
#
# * `LIBDIR/mcollective/mco-py-shims.txt` (a file resource) lists what the shims must be: the
#   agents, the server.cfg and the `--command`;
# * after a build, the exec records that list plus `mco-py --version` in
#   `LIBDIR/mcollective/mco-py-shims.built`;
# * the exec runs `unless` the record matches the list and the installed version and every
#   shim file is there. So it builds on the first run, after the package is upgraded or
#   downgraded, when the list changes, when a shim file went missing, and again after a
#   failed build; never on an unchanged node. (`refreshonly` plus `creates` would not do:
#   `creates` suppresses the refresh too, and a refresh lost to a failed build never comes
#   back.)
#
# The build goes to a scratch libdir, with a copy of server.cfg whose `libdir` is that
# scratch dir, and is then copied into `LIBDIR/mcollective/agent/`: `shim build -c` takes an
# agent's DDL from the config's libdir before the package's, so building in place would copy
# the old DDL onto itself after an upgrade. This way the DDLs always come from the installed
# package and a failed build leaves the shims in use as they are. The shims of the agents of
# the last build are removed first, so a dropped agent leaves none behind.
class mcollective_py::shims {
  $libdir = $mcollective_py::libdir
  $agents = $mcollective_py::agents
  $config = $mcollective_py::server_config
  $dir = "${libdir}/mcollective/agent"
  $list = "${libdir}/mcollective/mco-py-shims.txt"
  $built = "${libdir}/mcollective/mco-py-shims.built"
  $command_words = $mcollective_py::shim_command ? {
    undef   => [],
    default => ['--command', $mcollective_py::shim_command.join(' ')],
  }
  $command_text = $mcollective_py::shim_command ? {
    undef   => 'default (the Python of mco-py, -m mcollective_py)',
    default => $mcollective_py::shim_command.join(' '),
  }

  file { [$libdir, "${libdir}/mcollective", $dir]:
    ensure => directory,
    mode   => '0755',
  }

  file { $list:
    ensure  => file,
    mode    => '0644',
    content => @("LIST"),
      # Managed by Puppet (mcollective_py): the Ruby shims `mco-py shim build` keeps in
      # ${dir} (what it last built: ${built}).
      agents: ${agents.join(' ')}
      config: ${config}
      command: ${command_text}
      | LIST
  }

  $q_dir = mcollective_py::shell_quote($dir)
  $q_built = mcollective_py::shell_quote($built)
  # What the shims must be built from: the list and the installed mco-py.
  $wanted = "{ cat ${mcollective_py::shell_quote($list)} && ${mcollective_py::shell_quote($mcollective_py::mco_py)} --version; }"
  $build = ([$mcollective_py::mco_py, 'shim', 'build'] + $agents + $command_words).map |$word| {
    mcollective_py::shell_quote($word)
  }.join(' ')
  $build_lines = $agents.empty ? {
    true    => [],
    default => [
      'scratch=$(mktemp -d)',
      'trap \'rm -rf "$scratch"\' EXIT',
      "{ cat ${mcollective_py::shell_quote($config)}; printf 'libdir = %s\\n' \"\$scratch\"; } > \"\$scratch/server.cfg\"",
      "${build} -c \"\$scratch/server.cfg\" --out \"\$scratch\"",
    ],
  }
  $install_lines = $agents.empty ? {
    true    => [],
    default => ["cp \"\$scratch\"/mcollective/agent/*.rb \"\$scratch\"/mcollective/agent/*.ddl ${q_dir}/"],
  }
  $script = ['set -e'] + $build_lines + [
    "for a in \$(sed -n 's/^agents://p' ${q_built} 2>/dev/null); do",
    "  rm -f ${q_dir}/\"\$a\".rb ${q_dir}/\"\$a\".ddl",
    'done',
  ] + $install_lines + ["${wanted} > ${q_built}"]
  $shim_files = $agents.map |$agent| { "test -f ${q_dir}/${agent}.rb && test -f ${q_dir}/${agent}.ddl" }

  exec { 'mcollective_py: mco-py shim build':
    command  => join($script, "\n"),
    unless   => join($shim_files + ["${wanted} | cmp -s - ${q_built}"], ' && '),
    provider => shell,
    path     => ['/usr/bin', '/bin'],
    require  => [File[$list, $dir, $config], Class['mcollective_py::install']],
  }
}

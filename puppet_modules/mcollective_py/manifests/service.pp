# @summary Runs the node daemon: Debian's Ruby mcollectived, or mcollective-py's under systemd.
#
# @api private
#
# Declared by `mcollective_py`, whose parameters it reads.
class mcollective_py::service {
  $unit = $mcollective_py::service_name

  if $mcollective_py::daemon == 'mco-py' {
    $command = $mcollective_py::daemon_command ? {
      undef   => ["${mcollective_py::venv_dir}/bin/mco-py-server", '--config', $mcollective_py::server_config],
      default => $mcollective_py::daemon_command,
    }
    file { "${mcollective_py::unit_dir}/${unit}.service":
      ensure  => file,
      mode    => '0644',
      content => epp('mcollective_py/server.service.epp', {
          'exec_start'    => join($command, ' '),
          'server_config' => $mcollective_py::server_config,
      }),
      notify  => Service[$unit],
    }
    service { $unit:
      ensure   => running,
      enable   => true,
      provider => systemd,
    }
  } else {
    service { $unit:
      ensure => running,
      enable => true,
    }
  }
}

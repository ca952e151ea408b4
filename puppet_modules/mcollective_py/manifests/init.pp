# @summary mcollective-py on a node: the package, client/server config, agents and the daemon.
#
# Installs mcollective-py (into a Python venv by default), writes MCollective's `server.cfg`
# and/or `client.cfg` (RabbitMQ connector, psk security) and the facts MCollective filters on,
# then runs the node daemon: either Debian's Ruby `mcollectived`, hosting the Python agents
# through the Ruby shims `mco-py shim build` writes into the libdir (see
# `mcollective_py::shims`), or mcollective-py's own `mco-py server` under systemd.
#
# @example A web node, with the lab's broker and secret in Hiera
#   mcollective_py::middleware_hosts: [127.0.0.1]
#   mcollective_py::middleware_password: marionette
#   mcollective_py::psk: mco-lab-psk
#
# @param server
#   Whether to configure and run a node daemon (`server.cfg`, facts, shims or unit, service).
# @param client
#   Whether to write `client.cfg` for `mco` / `mco-py` on this machine.
# @param install_method
#   `venv`: pip-install into `venv_dir`; `package`: an OS package named `package_name`;
#   `none`: installed by other means (at `venv_dir`).
# @param package_name
#   The Python distribution (venv) or OS package name.
# @param package_ensure
#   `installed`, or the version to install.
# @param venv_dir
#   Where mcollective-py is installed: `VENV_DIR/bin/mco-py` is the command the module runs
#   (the shim builds, the daemon) and the package's DDLs are in
#   `VENV_DIR/share/mcollective-py/ddl`. With `install_method => package`, the package's
#   prefix (e.g. `/usr`).
# @param python
#   The Python 3 that creates the venv.
# @param confdir
#   MCollective's configuration directory.
# @param libdir
#   The MCollective libdir of both configs; with `daemon => mcollectived` the shims go to
#   `LIBDIR/mcollective/agent/`. The mco-py client and daemon also find the package's DDLs
#   by themselves, so they need nothing in it.
# @param main_collective
#   The main collective.
# @param collectives
#   Every collective the node subscribes to.
# @param middleware_hosts
#   The RabbitMQ brokers (STOMP), tried in order.
# @param middleware_port
#   The brokers' STOMP port.
# @param middleware_user
#   The broker user.
# @param middleware_password
#   The broker password.
# @param rabbitmq_vhost
#   The RabbitMQ vhost of the collectives.
# @param psk
#   The pre-shared key of the psk security plugin.
# @param agents
#   With `daemon => mcollectived`: the Python agents the Ruby daemon hosts, one shim each.
#   `mco-py shim build` must know each one (the package's entry points, or
#   `plugin.mcollective_py.agents` in `server_settings`). `mco-py server` serves every agent
#   it knows and does not use this list.
# @param fact_names
#   Facts (dotted for nested ones) written to the facts file MCollective filters on.
# @param server_logfile
#   The node daemon's log file.
# @param server_loglevel
#   The node daemon's log level.
# @param server_settings
#   Extra `server.cfg` settings; they win over the computed ones.
# @param client_settings
#   Extra `client.cfg` settings; they win over the computed ones.
# @param daemon
#   `mcollectived` (Debian's Ruby daemon hosting the shims) or `mco-py` (`mco-py server`
#   in the foreground under a systemd unit; reload sends SIGHUP, which re-reads the facts).
# @param daemon_package
#   The OS package of the Ruby daemon, installed with `daemon => mcollectived` (none if undef).
# @param manage_service
#   Whether to run the daemon; it restarts when its configuration or shims change. (The
#   unit file of `daemon => mco-py` is written either way.)
# @param unit_dir
#   Where the systemd unit of `daemon => mco-py` (`mco-py-server.service`) is written.
# @param identity
#   The node's MCollective identity.
# @param shim_command
#   How the Ruby shims start mcollective-py (`mco-py shim build --command`), in place of
#   the default `VENV_DIR/bin/python -m mcollective_py`; the shim appends
#   `agent run -c <mcollectived's config> AGENT REQUEST_FILE REPLY_FILE`. Words without blanks.
# @param daemon_command
#   The `ExecStart` command of `daemon => mco-py`; `VENV_DIR/bin/mco-py server -c SERVER_CFG`
#   when not given. It must stay in the foreground.
class mcollective_py (
  Boolean $server,
  Boolean $client,
  Enum['venv', 'package', 'none'] $install_method,
  String[1] $package_name,
  Pattern[/\A(installed|latest|[0-9][0-9A-Za-z.+-]*)\z/] $package_ensure,
  Mcollective_py::Path $venv_dir,
  Mcollective_py::Path $python,
  Mcollective_py::Path $confdir,
  Mcollective_py::Path $libdir,
  String[1] $main_collective,
  Array[String[1], 1] $collectives,
  Array[String[1], 1] $middleware_hosts,
  Integer[1, 65535] $middleware_port,
  String[1] $middleware_user,
  Sensitive[String[1]] $middleware_password,
  String[1] $rabbitmq_vhost,
  Sensitive[String[1]] $psk,
  Array[Mcollective_py::Agent_name] $agents,
  Array[String[1]] $fact_names,
  String[1] $server_logfile,
  Enum['debug', 'info', 'warn', 'error', 'fatal'] $server_loglevel,
  Hash[String[1], Scalar] $server_settings,
  Hash[String[1], Scalar] $client_settings,
  Enum['mcollectived', 'mco-py'] $daemon,
  Optional[String[1]] $daemon_package,
  Boolean $manage_service,
  Mcollective_py::Path $unit_dir,
  Pattern[/\A[\w.-]+\z/] $identity = $trusted['certname'],
  Optional[Array[Pattern[/\A\S+\z/], 1]] $shim_command = undef,
  Optional[Array[Pattern[/\A\S+\z/], 1]] $daemon_command = undef,
) {
  $mco_py = "${venv_dir}/bin/mco-py"
  $server_config = "${confdir}/server.cfg"
  $service_name = $daemon ? {
    'mcollectived' => 'mcollective',
    default        => 'mco-py-server',
  }

  contain mcollective_py::install

  # Settings both files share: collectives, connector (RabbitMQ over STOMP) and security.
  $pool = $middleware_hosts.map |$index, $host| {
    $n = $index + 1
    $broker = {
      "plugin.rabbitmq.pool.${n}.host"     => $host,
      "plugin.rabbitmq.pool.${n}.port"     => $middleware_port,
      "plugin.rabbitmq.pool.${n}.user"     => $middleware_user,
      "plugin.rabbitmq.pool.${n}.password" => $middleware_password.unwrap,
    }
    $broker
  }.reduce({}) |$all, $one| { $all + $one }
  $common = $pool + {
    'main_collective'           => $main_collective,
    'collectives'               => join($collectives, ','),
    'libdir'                    => $libdir,
    'connector'                 => 'rabbitmq',
    'plugin.rabbitmq.vhost'     => $rabbitmq_vhost,
    'plugin.rabbitmq.pool.size' => $middleware_hosts.length,
    'securityprovider'          => 'psk',
    'plugin.psk'                => $psk.unwrap,
  }

  file { $confdir:
    ensure => directory,
    mode   => '0755',
  }

  if $client {
    file { "${confdir}/client.cfg":
      ensure  => file,
      mode    => '0640',
      content => Sensitive(epp('mcollective_py/settings.cfg.epp', {
            'role'     => 'client',
            'settings' => $common + {
              'identity'    => "${identity}-client",
              'logger_type' => 'console',
              'loglevel'    => 'warn',
            } + $client_settings,
      })),
    }
  }

  if $server {
    $facts_file = "${confdir}/facts.yaml"
    $published = $fact_names.reduce({}) |$all, $name| {
      $value = getvar("facts.${name}")
      $value ? {
        Scalar  => $all + { $name => String($value).regsubst('(["\\\\])', '\\\\\\1', 'G') },
        default => $all,
      }
    }
    file { $facts_file:
      ensure  => file,
      mode    => '0644',
      content => epp('mcollective_py/facts.yaml.epp', { 'facts_to_publish' => $published }),
    }

    # Ruby's mcollectived forks; mco-py server stays in the foreground under systemd.
    $daemonize = $daemon ? {
      'mcollectived' => 1,
      default        => 0,
    }
    file { $server_config:
      ensure  => file,
      mode    => '0640',
      content => Sensitive(epp('mcollective_py/settings.cfg.epp', {
            'role'     => 'server',
            'settings' => $common + {
              'identity'    => $identity,
              'logfile'     => $server_logfile,
              'loglevel'    => $server_loglevel,
              'daemonize'   => $daemonize,
              'factsource'  => 'yaml',
              'plugin.yaml' => $facts_file,
            } + $server_settings,
      })),
    }

    if $daemon == 'mcollectived' {
      contain mcollective_py::shims
    } else {
      $exec_start = $daemon_command ? {
        undef   => [$mco_py, 'server', '-c', $server_config],
        default => $daemon_command,
      }
      file { "${unit_dir}/${service_name}.service":
        ensure  => file,
        mode    => '0644',
        content => epp('mcollective_py/server.service.epp', {
            'exec_start'    => join($exec_start, ' '),
            'server_config' => $server_config,
        }),
      }
    }

    if $manage_service {
      contain mcollective_py::service
      Class['mcollective_py::install'] -> Class['mcollective_py::service']
      File[$server_config] ~> Class['mcollective_py::service']
      if $daemon == 'mcollectived' {
        Class['mcollective_py::shims'] ~> Class['mcollective_py::service']
      } else {
        File["${unit_dir}/${service_name}.service"] ~> Class['mcollective_py::service']
      }
    }
  }
}

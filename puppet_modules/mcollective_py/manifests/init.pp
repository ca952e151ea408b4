# @summary mcollective-py on a node: the package, client/server config, agents and the daemon.
#
# Installs mcollective-py (into a Python venv by default), writes MCollective's `server.cfg`
# and/or `client.cfg` (RabbitMQ connector, psk security), the facts MCollective filters on,
# and for each agent its DDL and a Ruby shim so that Ruby mcollectived hosts the Python agent.
# Then it runs the daemon: Debian's Ruby `mcollectived` (with the shims), or mcollective-py's
# own node daemon under systemd.
#
# @example A web node, with the lab's broker and secret in Hiera
#   mcollective_py::middleware_hosts: [127.0.0.1]
#   mcollective_py::middleware_password: marionette
#   mcollective_py::psk: mco-lab-psk
#
# @param server
#   Whether to configure and run a node daemon (`server.cfg`, agents, facts, service).
# @param client
#   Whether to write `client.cfg` for `mco` / `mco-py` on this machine.
# @param install_method
#   `venv`: pip-install into `venv_dir`; `package`: an OS package named `package_name`;
#   `none`: installed by other means.
# @param package_name
#   The Python distribution (venv) or OS package name.
# @param package_ensure
#   `installed`, or the version to install.
# @param venv_dir
#   The venv mcollective-py is installed into with `install_method => venv`.
# @param python
#   The Python 3 that creates the venv.
# @param confdir
#   MCollective's configuration directory.
# @param libdir
#   The MCollective libdir the agents go to (`LIBDIR/mcollective/agent/`).
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
#   The agents to install; each needs `files/ddl/AGENT.ddl` in this module.
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
#   `mcollectived` (Debian's Ruby daemon hosting the shims) or `mco-py` (systemd unit).
# @param daemon_package
#   The OS package of the Ruby daemon, installed with `daemon => mcollectived` (none if undef).
# @param manage_service
#   Whether to run the daemon; it restarts when its configuration or agents change.
# @param unit_dir
#   Where the systemd unit of `daemon => mco-py` is written.
# @param identity
#   The node's MCollective identity.
# @param agent_command
#   The command the Ruby shims run (then: agent, request file, reply file); the venv's
#   `python -m mcollective_py.server.shims` when not given.
# @param daemon_command
#   The command of `daemon => mco-py`; the venv's `mco-py-server --config server.cfg` when not given.
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
  Optional[Array[String[1], 1]] $agent_command = undef,
  Optional[Array[String[1], 1]] $daemon_command = undef,
) {
  $shim_command = $agent_command ? {
    undef   => ["${venv_dir}/bin/python", '-m', 'mcollective_py.server.shims'],
    default => $agent_command,
  }
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

    file { $server_config:
      ensure  => file,
      mode    => '0640',
      content => Sensitive(epp('mcollective_py/settings.cfg.epp', {
            'role'     => 'server',
            'settings' => $common + {
              'identity'    => $identity,
              'logfile'     => $server_logfile,
              'loglevel'    => $server_loglevel,
              'daemonize'   => 1,
              'factsource'  => 'yaml',
              'plugin.yaml' => $facts_file,
            } + $server_settings,
      })),
    }

    file { [$libdir, "${libdir}/mcollective", "${libdir}/mcollective/agent"]:
      ensure => directory,
      mode   => '0755',
    }
    $agents.each |$agent| {
      mcollective_py::agent { $agent:
        libdir  => $libdir,
        command => $shim_command,
      }
    }

    if $manage_service {
      contain mcollective_py::service
      Class['mcollective_py::install'] -> Class['mcollective_py::service']
      File[$server_config] ~> Class['mcollective_py::service']
      Mcollective_py::Agent <| |> ~> Class['mcollective_py::service']
    }
  }
}

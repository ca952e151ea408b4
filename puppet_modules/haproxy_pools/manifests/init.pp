# @summary HAProxy with one backend per service; servers sit in an online or a maintenance pool.
#
# Every service in `services` gets a frontend bound to its `frontend` address and a backend
# named after the service, with one server per node, named after the node's identity. A
# server's pool is its HAProxy admin state: `online` servers start ready, `maintenance`
# servers start in MAINT (`disabled`). While HAProxy runs, the haproxy agent moves servers
# between the pools on the admin socket (`set server SERVICE/NODE state ready|drain|maint`);
# the server state file keeps those moves across reloads, and a changed configuration is
# checked with `haproxy -c` before it replaces the old one.
#
# @example Hiera data, as `mco-py release render` writes it to pools/ENV/SERVICE.yaml
#   haproxy_pools::services:
#     shop:
#       frontend: "127.0.0.1:8080"
#       mode: http
#       check: {type: http, path: /health, expect_status: 200}
#       servers:
#         web1.lab: {address: 127.0.0.11, port: 8081, pool: online, weight: 100}
#
# @param services
#   The pools by service (backend) name; Hiera merges every pools/ENV/*.yaml file (hash merge).
# @param config_dir
#   Directory of the configuration; the file is `haproxy.cfg` in it.
# @param socket_path
#   The admin socket (level admin) the haproxy agent drives the pools through.
# @param state_file
#   Where server states are saved before a reload and read back on start.
# @param manage_package
#   Whether to install `package_name`.
# @param package_name
#   The HAProxy package.
# @param package_ensure
#   The `ensure` of the package.
# @param manage_service
#   Whether to run the service; a changed configuration then saves the server states and
#   reloads (no dropped connections) with `reload_command`.
# @param service_name
#   The HAProxy service.
# @param haproxy_bin
#   The haproxy executable, used to check a new configuration (`haproxy -c -f`).
# @param socat_bin
#   The socat executable, used to save the server states before a reload.
# @param log_target
#   Where HAProxy logs (`log TARGET local0`).
# @param maxconn
#   The global connection limit.
# @param timeouts
#   `connect`, `client` and `server` timeouts in milliseconds.
# @param reload_command
#   How to reload HAProxy; `service SERVICE_NAME reload` when not given.
# @param service_provider
#   The Puppet service provider (default: the platform's). `base` with `start_command` (and
#   `status_command`) runs HAProxy where there is no init system, e.g. a container.
# @param start_command
#   How to start HAProxy, for providers that take one (`base`).
# @param status_command
#   How to tell whether HAProxy runs (exit 0), for providers that take one (`base`).
# @param user
#   The user HAProxy drops its privileges to, if any.
# @param group
#   The group HAProxy drops its privileges to, if any.
class haproxy_pools (
  Hash[Haproxy_pools::Name, Haproxy_pools::Service] $services,
  Pattern[/\A\//] $config_dir,
  Pattern[/\A\//] $socket_path,
  Pattern[/\A\//] $state_file,
  Boolean $manage_package,
  String[1] $package_name,
  String[1] $package_ensure,
  Boolean $manage_service,
  String[1] $service_name,
  Pattern[/\A\//] $haproxy_bin,
  Pattern[/\A\//] $socat_bin,
  String[1] $log_target,
  Integer[1] $maxconn,
  Struct[{ connect => Integer[1], client => Integer[1], server => Integer[1] }] $timeouts,
  Optional[String[1]] $reload_command = undef,
  Optional[String[1]] $service_provider = undef,
  Optional[String[1]] $start_command = undef,
  Optional[String[1]] $status_command = undef,
  Optional[String[1]] $user = undef,
  Optional[String[1]] $group = undef,
) {
  $config_file = "${config_dir}/haproxy.cfg"

  if $manage_package {
    package { $package_name:
      ensure => $package_ensure,
      before => File[$config_file],
    }
  }

  file { $config_dir:
    ensure => directory,
    mode   => '0755',
  }

  # The format version line only: HAProxy warns about a missing or empty state file.
  file { $state_file:
    ensure  => file,
    content => "1\n",
    replace => false,
    mode    => '0600',
  }

  file { $config_file:
    ensure       => file,
    mode         => '0644',
    content      => epp('haproxy_pools/haproxy.cfg.epp', {
        'services'    => $services,
        'socket_path' => $socket_path,
        'state_file'  => $state_file,
        'log_target'  => $log_target,
        'maxconn'     => $maxconn,
        'timeouts'    => $timeouts,
        'user'        => $user,
        'group'       => $group,
    }),
    validate_cmd => "${haproxy_bin} -c -q -f %",
    require      => File[$state_file],
  }

  if $manage_service {
    $reload = $reload_command ? {
      undef   => "/usr/sbin/service ${service_name} reload",
      default => $reload_command,
    }

    # Runtime pool moves (maint/drain/ready) live only in HAProxy's memory: save them just
    # before the reload so load-server-state-from-file restores them.
    $save = "echo \"show servers state\" | ${socat_bin} stdio UNIX-CONNECT:${socket_path} > ${state_file}.new"
    exec { 'haproxy_pools: save server states':
      command     => "/bin/sh -c '${save} && mv ${state_file}.new ${state_file}'",
      onlyif      => "/usr/bin/test -S ${socket_path}",
      refreshonly => true,
      subscribe   => File[$config_file],
    }

    $enable = $service_provider ? {
      'base'  => undef,  # base cannot enable a service at boot
      default => true,
    }
    service { $service_name:
      ensure    => running,
      enable    => $enable,
      provider  => $service_provider,
      start     => $start_command,
      status    => $status_command,
      restart   => $reload,
      subscribe => [File[$config_file], Exec['haproxy_pools: save server states']],
    }
  }
}

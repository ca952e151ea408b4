# @summary The release of its service a node runs: version, artifact, checksum, health URL, service manager.
#
# The parameters come from the release data `mco-py release render SERVICE VERSION --env ENV`
# writes to Hiera (releases/SERVICE/ENV.yaml, picked by the node's `app` and `deploy_env`
# facts). The class always writes the release descriptor
# `CONFIG_DIR/releases/SERVICE.yaml`, which the deploy and healthcheck agents read. With
# `deploy_method => artifact` the deploy agent fetches and activates the artifact (node by node,
# under the orchestrator); with `deploy_method => puppet` this class fetches it (verified
# against `sha256`), unpacks it under `INSTALL_ROOT/SERVICE/releases/VERSION` and points
# `INSTALL_ROOT/SERVICE/current` at it, restarting the service.
#
# @example Hiera data, as `mco-py release render shop 1.4.2 --env lab` writes it
#   app_release::service: shop
#   app_release::version: 1.4.2
#   app_release::deploy_env: lab
#   app_release::os: linux
#   app_release::deploy_method: artifact
#   app_release::artifact_url: http://127.0.0.1:8000/artifacts/shop/shop-1.4.2.tar.gz
#   app_release::sha256: eebaaead9ab129904f8af45f5a7dc74aa07014555b072fdbee069066ccd53a12
#   app_release::service_manager: none
#   app_release::port: 8081
#   app_release::health_url: http://127.0.0.1:8081/health
#   app_release::nodes:
#     web1.lab: {address: 127.0.0.11, port: 8081, health_url: http://127.0.0.11:8081/health}
#
# @param service
#   The service name from the catalog.
# @param version
#   The release version.
# @param deploy_env
#   The environment the release data was rendered for.
# @param os
#   The OS the catalog says the service runs on; the node's `os.family` fact must agree.
# @param deploy_method
#   `artifact`: the deploy agent installs releases; `puppet`: this class does.
# @param artifact_url
#   Where the release artifact is downloaded from.
# @param sha256
#   The artifact's SHA-256 (64 lower case hex digits).
# @param service_manager
#   `systemd`, `windows`, or `none` (something else runs the service, as in the lab).
# @param port
#   The port the service listens on, unless the node's entry in `nodes` says otherwise.
# @param config_dir
#   Directory of mcollective-py's node files; the descriptor goes to its `releases/`.
# @param install_root
#   Releases are unpacked under `INSTALL_ROOT/SERVICE/releases/VERSION`.
# @param unit_dir
#   Where a systemd unit is written when `start_command` is given.
# @param manage_service
#   Whether to keep the service running (ignored with `service_manager => none`).
# @param health_url
#   The health URL for nodes not listed in `nodes` (a node-local URL).
# @param nodes
#   Per node identity: address, port and health URL of the service on that node.
# @param unit_name
#   The name of the system service; the service name when not given.
# @param start_command
#   With systemd: the command that starts the service, relative to the `current` directory
#   (or absolute); a unit file is written for it. Without it the unit must already exist.
# @param run_user
#   The user a written systemd unit runs the service as.
# @param expected_version
#   When set (from the `app_version` fact the deploy agent passes), refuse to apply data of
#   any other version: the release data in Hiera was not rendered and committed yet.
class app_release (
  App_release::Name $service,
  App_release::Version $version,
  Pattern[/\A[a-z][a-z0-9_]{0,31}\z/] $deploy_env,
  Enum['linux', 'windows'] $os,
  Enum['artifact', 'puppet'] $deploy_method,
  App_release::Url $artifact_url,
  Pattern[/\A[0-9a-f]{64}\z/] $sha256,
  Enum['systemd', 'windows', 'none'] $service_manager,
  Integer[1, 65535] $port,
  App_release::Path $config_dir,
  App_release::Path $install_root,
  App_release::Path $unit_dir,
  Boolean $manage_service,
  Optional[App_release::Url] $health_url = undef,
  Hash[Pattern[/\A[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\z/], App_release::Node] $nodes = {},
  Optional[Pattern[/\A[A-Za-z0-9@_.-]+\z/]] $unit_name = undef,
  Optional[String[1]] $start_command = undef,
  Optional[String[1]] $run_user = undef,
  Optional[String[1]] $expected_version = $facts['app_version'],
) {
  if $expected_version =~ NotUndef and $expected_version != $version {
    fail(@("MSG"/L))
      app_release: Hiera holds release ${version} of ${service} for ${deploy_env}, but \
      ${expected_version} was asked for; render and commit it first: \
      mco-py release render ${service} ${expected_version} --env ${deploy_env}
      |-MSG
  }
  $node_os = $facts.dig('os', 'family') ? { 'windows' => 'windows', default => 'linux' }
  if $node_os != $os {
    fail("app_release: ${service} runs on ${os} (catalog), but this node runs ${node_os}")
  }

  $node = $nodes[$trusted['certname']]
  if $node =~ Undef {
    $address = '127.0.0.1'
    $listen_port = $port
    $node_health_url = $health_url
  } else {
    $address = $node['address']
    $listen_port = $node['port']
    $node_health_url = $node['health_url']
  }
  $unit = $unit_name ? {
    undef   => $service,
    default => $unit_name,
  }
  $service_dir = "${install_root}/${service}"
  $release_dir = "${service_dir}/releases/${version}"
  $current = "${service_dir}/current"

  file { [$config_dir, "${config_dir}/releases"]:
    ensure => directory,
  }

  file { "${config_dir}/releases/${service}.yaml":
    ensure  => file,
    content => epp('app_release/release.yaml.epp', {
        'service'         => $service,
        'version'         => $version,
        'deploy_env'      => $deploy_env,
        'deploy_method'   => $deploy_method,
        'artifact_url'    => $artifact_url,
        'sha256'          => $sha256,
        'service_manager' => $service_manager,
        'unit'            => $unit,
        'address'         => $address,
        'port'            => $listen_port,
        'health_url'      => $node_health_url,
        'release_dir'     => $release_dir,
        'current'         => $current,
    }),
  }

  if $deploy_method == 'puppet' {
    class { 'app_release::install':
      service      => $service,
      version      => $version,
      os           => $os,
      artifact_url => $artifact_url,
      sha256       => $sha256,
      install_root => $install_root,
    }
  }

  if $manage_service and $service_manager != 'none' {
    if $service_manager == 'systemd' and $start_command =~ NotUndef {
      $exec_start = $start_command ? {
        /\A\//  => $start_command,
        default => "${current}/${start_command}",
      }
      file { "${unit_dir}/${unit}.service":
        ensure  => file,
        content => epp('app_release/unit.service.epp', {
            'service'    => $service,
            'current'    => $current,
            'exec_start' => $exec_start,
            'address'    => $address,
            'port'       => $listen_port,
            'run_user'   => $run_user,
        }),
        notify  => Service[$unit],
      }
    }
    service { $unit:
      ensure   => running,
      enable   => true,
      provider => $service_manager,
    }
    if $deploy_method == 'puppet' {
      Class['app_release::install'] ~> Service[$unit]
    }
  }
}

# @summary Fetches, verifies and unpacks a release artifact, then points `current` at it.
#
# Used by `app_release` with `deploy_method => puppet`. The artifact is kept under
# `INSTALL_ROOT/SERVICE/artifacts/`; Puppet refuses a download whose SHA-256 differs from
# `sha256`. Releases already unpacked are not unpacked again.
#
# @param service
#   The service name.
# @param version
#   The release version.
# @param os
#   `linux` (tar, or unzip for .zip) or `windows` (Expand-Archive).
# @param artifact_url
#   Where the artifact is downloaded from.
# @param sha256
#   The artifact's SHA-256.
# @param install_root
#   Root of the service directories.
class app_release::install (
  App_release::Name $service,
  App_release::Version $version,
  Enum['linux', 'windows'] $os,
  App_release::Url $artifact_url,
  Pattern[/\A[0-9a-f]{64}\z/] $sha256,
  App_release::Path $install_root,
) {
  $service_dir = "${install_root}/${service}"
  $release_dir = "${service_dir}/releases/${version}"
  $artifact = "${service_dir}/artifacts/${artifact_url.split('/')[-1]}"
  $marker = "${release_dir}/.unpacked"

  file { [$install_root, $service_dir, "${service_dir}/artifacts", "${service_dir}/releases", $release_dir]:
    ensure => directory,
  }

  file { $artifact:
    ensure         => file,
    source         => $artifact_url,
    checksum       => 'sha256',
    checksum_value => $sha256,
    backup         => false,
  }

  if $os == 'windows' {
    $expand = "Expand-Archive -Force -Path '${artifact}' -DestinationPath '${release_dir}'"
    exec { "app_release: unpack ${service} ${version}":
      command  => "powershell.exe -NoProfile -NonInteractive -Command \"${expand}; New-Item -ItemType File -Path '${marker}'\"",
      path     => ['C:/Windows/System32', 'C:/Windows/System32/WindowsPowerShell/v1.0'],
      creates  => $marker,
      provider => windows,
      require  => File[$artifact, $release_dir],
    }
  } else {
    $unpack = $artifact ? {
      /\.zip\z/ => "unzip -o -q '${artifact}' -d '${release_dir}'",
      default   => "tar -xf '${artifact}' -C '${release_dir}'",
    }
    exec { "app_release: unpack ${service} ${version}":
      command  => "${unpack} && touch '${marker}'",
      path     => ['/usr/bin', '/bin'],
      creates  => $marker,
      provider => shell,
      require  => File[$artifact, $release_dir],
    }
  }

  file { "${service_dir}/current":
    ensure  => link,
    target  => $release_dir,
    require => Exec["app_release: unpack ${service} ${version}"],
  }
}

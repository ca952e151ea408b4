# @summary Installs mcollective-py (venv, OS package or nothing) and the Ruby daemon if used.
#
# @api private
#
# Declared by `mcollective_py`, whose parameters it reads.
class mcollective_py::install {
  $venv = $mcollective_py::venv_dir
  $pkg = $mcollective_py::package_name
  $ensure = $mcollective_py::package_ensure

  case $mcollective_py::install_method {
    'venv': {
      $requirement = $ensure ? {
        /\A(installed|latest)\z/ => $pkg,
        default                  => "${pkg}==${ensure}",
      }
      $upgrade = $ensure ? {
        'latest' => ' --upgrade',
        default  => '',
      }
      # Skip pip when the wanted version is there (never with latest).
      $installed = $ensure ? {
        'latest'    => undef,
        'installed' => "test -x ${venv}/bin/pip && ${venv}/bin/pip show --quiet ${pkg}",
        default     => "test -x ${venv}/bin/pip && ${venv}/bin/pip show ${pkg} | grep -qx 'Version: ${ensure}'",
      }
      exec { 'mcollective_py: create venv':
        command => "${mcollective_py::python} -m venv ${venv}",
        creates => "${venv}/bin/python",
      }
      exec { "mcollective_py: pip install ${requirement}":
        command  => "${venv}/bin/pip install --quiet${upgrade} '${requirement}'",
        unless   => $installed,
        provider => shell,
        require  => Exec['mcollective_py: create venv'],
      }
    }
    'package': {
      package { $pkg:
        ensure => $ensure,
      }
    }
    default: {}
  }

  if $mcollective_py::server and $mcollective_py::daemon == 'mcollectived' and $mcollective_py::daemon_package =~ NotUndef {
    package { $mcollective_py::daemon_package:
      ensure => installed,
    }
  }
}

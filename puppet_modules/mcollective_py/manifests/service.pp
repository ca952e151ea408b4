# @summary Runs the node daemon: Debian's Ruby mcollectived, or `mco-py server` under systemd.
#
# @api private
#
# Declared by `mcollective_py`, whose parameters it reads. The unit file of `daemon => mco-py`
# is written by `mcollective_py` (it notifies this class).
class mcollective_py::service {
  $provider = $mcollective_py::daemon ? {
    'mco-py' => 'systemd',
    default  => undef,
  }
  service { $mcollective_py::service_name:
    ensure   => running,
    enable   => true,
    provider => $provider,
  }
}

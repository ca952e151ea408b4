# @summary How HAProxy checks the servers of a backend (times in milliseconds).
#
# `http` sends `GET path` and expects `expect_status`; `tcp` and `command` checks only test
# that the port accepts connections (HAProxy cannot run a node-side command).
type Haproxy_pools::Check = Struct[{
  type                    => Enum['http', 'tcp', 'command'],
  Optional[path]          => Pattern[/\A\/[^\s]*\z/],
  Optional[expect_status] => Integer[100, 599],
  Optional[port]          => Integer[1, 65535],
  Optional[interval_ms]   => Integer[100],
  Optional[timeout_ms]    => Integer[100],
  Optional[rise]          => Integer[1, 100],
  Optional[fall]          => Integer[1, 100],
}]

# @summary A server of a backend: where it listens, its initial pool and its weight.
#
# `pool => maintenance` starts the server in HAProxy's MAINT state (`disabled`).
type Haproxy_pools::Server = Struct[{
  address          => Pattern[/\A[0-9A-Za-z.:-]+\z/],
  port             => Integer[1, 65535],
  Optional[pool]   => Enum['online', 'maintenance'],
  Optional[weight] => Integer[0, 256],
}]

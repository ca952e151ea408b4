# @summary The HAProxy pool of one service: its frontend bind, balancing, check and servers.
type Haproxy_pools::Service = Struct[{
  frontend          => Pattern[/\A(\*|[0-9.]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}\z/],
  Optional[mode]    => Enum['http', 'tcp'],
  Optional[balance] => Enum['roundrobin', 'leastconn', 'source', 'first'],
  Optional[check]   => Haproxy_pools::Check,
  servers           => Hash[Haproxy_pools::Name, Haproxy_pools::Server],
}]

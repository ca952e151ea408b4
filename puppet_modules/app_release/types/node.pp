# @summary Where the service listens on one node, and the URL its health check GETs there.
type App_release::Node = Struct[{
  address              => Pattern[/\A[0-9A-Za-z.:-]+\z/],
  port                 => Integer[1, 65535],
  Optional[health_url] => App_release::Url,
}]

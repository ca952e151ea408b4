# @summary A backend or server name as HAProxy and the haproxy agent's DDL accept it.
type Haproxy_pools::Name = Pattern[/\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}\z/]

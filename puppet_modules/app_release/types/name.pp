# @summary A service name from the catalog (as deploy.ddl's `service` input).
type App_release::Name = Pattern[/\A[a-z][a-z0-9_-]{0,62}\z/]

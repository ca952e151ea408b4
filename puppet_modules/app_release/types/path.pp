# @summary An absolute path, POSIX (/opt/x) or Windows (C:/x, C:\x).
type App_release::Path = Pattern[/\A(\/|[A-Za-z]:[\/\\])/]

# @summary A release version: 2 to 4 numbers with optional SemVer -prerelease and +build parts.
type App_release::Version = Pattern[/\A[0-9]+(\.[0-9]+){1,3}(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?(\+[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?\z/]

# @summary An http(s) URL without spaces, quotes or backslashes (safe to quote in generated files).
type App_release::Url = Pattern[/\Ahttps?:\/\/[^\s"'\\]+\z/]

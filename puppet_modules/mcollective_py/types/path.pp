# @summary An absolute POSIX path.
type Mcollective_py::Path = Pattern[/\A\/[^\s]*\z/]

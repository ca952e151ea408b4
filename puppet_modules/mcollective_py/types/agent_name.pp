# @summary An MCollective agent name (also its Ruby class name, capitalized).
type Mcollective_py::Agent_name = Pattern[/\A[a-z][a-z0-9_]{0,62}\z/]

# @summary One word quoted for `/bin/sh`: in single quotes, each `'` written as `'\''`.
#
# @param word
#   The word to quote.
# @return [String] The word, safe to paste into a shell command line as one argument.
function mcollective_py::shell_quote(String $word) >> String {
  "'${word.regsubst("'", "'\\\\''", 'G')}'"
}

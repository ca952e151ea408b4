# Loaded into the lab's Ruby nodes (RUBYOPT=-r<this file>), nowhere else.
#
# Debian 12's MCollective 2.12.5 reads YAML facts with Psych 3's positional form,
# YAML.safe_load(text, [Symbol], [], true); Ruby 3.1 ships Psych 4, whose safe_load takes
# keywords only, so stock mcollectived logs "wrong number of arguments (given 4, expected 1)"
# and has no facts (fact filters never match). This adapter maps the positional arguments
# onto the keywords; keyword calls pass through unchanged.
require "psych"

module McoPyLabPositionalSafeLoad
  def safe_load(yaml, classes = nil, symbols = nil, aliases = nil, filename = nil, **kwargs)
    kwargs[:permitted_classes] = classes if classes && !kwargs.key?(:permitted_classes)
    kwargs[:permitted_symbols] = symbols if symbols && !kwargs.key?(:permitted_symbols)
    kwargs[:aliases] = aliases unless aliases.nil? || kwargs.key?(:aliases)
    kwargs[:filename] = filename if filename && !kwargs.key?(:filename)
    super(yaml, **kwargs)
  end
end

Psych.singleton_class.prepend(McoPyLabPositionalSafeLoad)

# Load DDL files with Ruby MCollective's own DDL classes and print what they hold.
#
# Input (stdin): JSON array of {"path": ..., "kind": "agent|data|discovery|...", "name": ...}
# Output (stdout): JSON array, one entry per file:
#   {"ok": true, "meta": T, "entities": T, "usage": T, "requirements": T}
#   {"ok": false, "error": "<exception class>: <message>"}
# where T is a value tagged so that Ruby types survive JSON: Symbols -> {"sym": s},
# Floats -> {"float": to_s}, Regexps -> {"re": source, "opts": options},
# Hashes -> {"hash": [[k, v], ...]} (order kept); Strings, Integers, true/false/nil as is.
require "json"
require "mcollective"

def tag(v)
  case v
  when nil, true, false, Integer then v
  when Float then { "float" => v.to_s }
  when Symbol then { "sym" => v.to_s }
  when String then v
  when Regexp then { "re" => v.source, "opts" => v.options }
  when Array then v.map { |x| tag(x) }
  when Hash then { "hash" => v.map { |k, x| [tag(k), tag(x)] } }
  else { "other" => v.inspect }
  end
end

MCollective::Log.configure(MCollective::Logger::Console_logger.new) rescue nil
results = JSON.parse($stdin.read).map do |item|
  begin
    klass = begin
      MCollective::DDL.const_get("%sDDL" % item["kind"].capitalize)
    rescue NameError
      MCollective::DDL::Base
    end
    ddl = klass.new(item["name"], item["kind"].to_sym, false)
    ddl.instance_eval(File.read(item["path"]), item["path"], 1)
    { "ok" => true, "meta" => tag(ddl.meta), "entities" => tag(ddl.entities),
      "usage" => tag(ddl.instance_variable_get(:@usage)), "requirements" => tag(ddl.requirements) }
  rescue Exception => e
    { "ok" => false, "error" => "#{e.class}: #{e.message}" }
  end
end
puts JSON.generate(results)

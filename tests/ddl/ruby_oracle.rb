# Ask Ruby (and Ruby MCollective's own code) what it does with each case; print outcomes.
#
# Input (stdin): JSON array of cases; each has "mode":
#   "validate": {"ddl": text, "action": name, "data": T} -> AgentDDL#validate_rpc_request
#   "defaults": {"ddl": text, "action": name, "data": T} -> AgentDDL#set_default_input_arguments
#   "boolean" / "number": {"value": string} -> MCollective::DDL.string_to_boolean / _number
#   "aggregate": {"ddl": text, "action": name, "replies": [T, ...], "color": bool}
#                -> Aggregate + RPC::Stats#text_for_aggregates, as mco rpc does
#   "align": {"text": s, "cols": n, "preamble": n} -> MCollective::Util.align_text
#   "format": {"format": s, "args": [T, ...]} -> format % args
#   "to_s" / "inspect": {"value": T} -> value.to_s / value.inspect
#   "match": {"source": s, "opts": n, "value": s} -> !!value.match(Regexp.new(source, opts))
#   "help": {"path": p, "kind": k, "name": n} -> what `mco plugin doc k/n` prints for that file
#            (DDL#help with the /etc/mcollective templates, plus puts' final newline)
# Output (stdout): JSON array of {"ok": bool, "error": message, "result": T}.
# T values are tagged as in ruby_ddl_dump.rb ({"sym": s}, {"hash": [[k, v]...]}, ...).
require "json"
require "mcollective"

def tag(v)
  case v
  when nil, true, false, Integer then v
  when Float then { "float" => v.to_s }
  when Symbol then { "sym" => v.to_s }
  when String then v
  when Array then v.map { |x| tag(x) }
  when Hash then { "hash" => v.map { |k, x| [tag(k), tag(x)] } }
  else { "other" => v.inspect }
  end
end

def untag(v)
  case v
  when Array then v.map { |x| untag(x) }
  when Hash
    return v["sym"].to_sym if v.key?("sym")
    return v["float"].to_f if v.key?("float")
    return Regexp.new(v["re"], v["opts"]) if v.key?("re")
    return Hash[v["hash"].map { |k, x| [untag(k), untag(x)] }] if v.key?("hash")
    raise "cannot untag #{v.inspect}"
  else v
  end
end

def agent_ddl(text)
  ddl = MCollective::DDL::AgentDDL.new("t", :agent, false)
  ddl.instance_eval(text, "case.ddl", 1)
  ddl
end

MCollective::Config.instance.instance_variable_set(:@color, true)

results = JSON.parse($stdin.read).map do |item|
  begin
    case item["mode"]
    when "validate"
      agent_ddl(item["ddl"]).validate_rpc_request(item["action"], untag(item["data"]))
      { "ok" => true }
    when "defaults"
      data = untag(item["data"])
      agent_ddl(item["ddl"]).set_default_input_arguments(item["action"], data)
      { "ok" => true, "result" => tag(data) }
    when "boolean"
      { "ok" => true, "result" => tag(MCollective::DDL.string_to_boolean(item["value"])) }
    when "number"
      { "ok" => true, "result" => tag(MCollective::DDL.string_to_number(item["value"])) }
    when "aggregate"
      MCollective::Config.instance.instance_variable_set(:@color, item["color"])
      ddl = agent_ddl(item["ddl"])
      aggregate = MCollective::Aggregate.new(ddl.action_interface(item["action"]))
      item["replies"].each { |data| aggregate.call_functions({ :data => untag(data) }) }
      stats = MCollective::RPC::Stats.new
      stats.ddl = ddl
      stats.aggregate_summary = aggregate.summarize
      stats.aggregate_failures = aggregate.failed
      { "ok" => true, "result" => stats.text_for_aggregates }
    when "format"
      { "ok" => true, "result" => item["format"] % untag(item["args"]) }
    when "to_s"
      { "ok" => true, "result" => untag(item["value"]).to_s }
    when "inspect"
      { "ok" => true, "result" => untag(item["value"]).inspect }
    when "match"
      { "ok" => true, "result" => !!item["value"].match(Regexp.new(item["source"], item["opts"])) }
    when "help"
      MCollective::Config.instance.instance_variable_set(:@configfile, "/etc/mcollective/client.cfg")
      klass = begin
        MCollective::DDL.const_get("%sDDL" % item["kind"].capitalize)
      rescue NameError
        MCollective::DDL::Base
      end
      ddl = klass.new(item["name"].to_sym, item["kind"].to_sym, false)
      ddl.instance_eval(File.read(item["path"]), item["path"], 1)
      text = ddl.help(nil)
      { "ok" => true, "result" => text.end_with?("\n") ? text : text + "\n" }
    when "align"
      { "ok" => true, "result" => MCollective::Util.align_text(item["text"].dup, item["cols"], item["preamble"]) }
    else
      raise "unknown mode #{item['mode']}"
    end
  rescue Exception => e
    { "ok" => false, "error" => e.message, "class" => e.class.to_s }
  end
end
puts JSON.generate(results)

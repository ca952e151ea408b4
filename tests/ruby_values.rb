# Test helper: reads tagged-JSON values (one per line) on stdin, prints for each a JSON line
# {"inspect": v.inspect, "pretty": v.pretty_inspect} computed by the real Ruby.
require 'json'
require 'pp'

def decode(t)
  case t.keys.first
  when 'n' then nil
  when 'b' then t['b']
  when 'i' then Integer(t['i'])
  when 'f' then { 'Infinity' => Float::INFINITY, '-Infinity' => -Float::INFINITY }.fetch(t['f']) { Float(t['f']) }
  when 's' then t['s'].dup.force_encoding('UTF-8')
  when 'y' then t['y'].to_sym
  when 'a' then t['a'].map { |x| decode(x) }
  when 'h' then t['h'].each_with_object({}) { |(k, v), h| h[decode(k)] = decode(v) }
  else raise "bad tag #{t.keys.first}"
  end
end

STDOUT.sync = true
STDIN.each_line do |line|
  v = decode(JSON.parse(line))
  puts JSON.generate({ 'inspect' => v.inspect, 'pretty' => PP.pp(v, ''.dup, 79).chomp })
end

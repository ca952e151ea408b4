#!/bin/bash
set -u
unset RUBYOPT MCOLLECTIVE_EXTRA_OPTS
# Regenerate tests/golden/ddl/doc/*.txt from the real `mco plugin doc` (Debian mcollective 2.12.5).
# Run by hand after changing ddl/{haproxy,healthcheck,deploy}.ddl or the fixtures; review the diff.
cd "$(dirname "$0")/../.."
E=$(mktemp -d); P=$(mktemp -d)
for d in $E $P; do printf 'libdir = %s\nconnector = rabbitmq\nsecurityprovider = psk\nplugin.psk = x\n' "$d" > $d/client.cfg; done
mkdir -p $P/mcollective/agent
for n in haproxy healthcheck deploy; do cp ddl/$n.ddl $P/mcollective/agent/; done
for f in tests/golden/ddl/valid/*/*.ddl; do k=$(basename $(dirname $f)); mkdir -p $P/mcollective/$k; cp $f $P/mcollective/$k/; done
for f in $(dpkg -L mcollective-common | grep '\.ddl$'); do
  k=$(basename $(dirname $f)); n=$(basename $f .ddl)
  mco plugin doc $k/$n -c $E/client.cfg > tests/golden/ddl/doc/debian--$k--$n.txt 2>/dev/null || echo FAIL $k/$n
done
for n in haproxy healthcheck deploy; do mco plugin doc agent/$n -c $P/client.cfg > tests/golden/ddl/doc/project--agent--$n.txt 2>/dev/null || echo FAIL $n; done
for f in tests/golden/ddl/valid/*/*.ddl; do
  k=$(basename $(dirname $f)); n=$(basename $f .ddl); [ $n = syntax_zoo ] && continue
  mco plugin doc $k/$n -c $P/client.cfg > tests/golden/ddl/doc/fixture--$k--$n.txt 2>/dev/null || echo FAIL $k/$n
done
rm -rf $E $P

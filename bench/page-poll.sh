#!/usr/bin/env bash
# page-poll.sh LOG: stands in for an open dashboard during a bench run. Waits for bench/run.sh's "starting servers" line
# in LOG (its stderr), then fetches /dashboard/data each second, as the page does, until run.sh ends. Usage:
#   bench/page-poll.sh /tmp/run.log & bench/run.sh --only "accept_32 hold" 2> /tmp/run.log; wait
log=$1
until grep -q 'starting servers' "$log" 2>/dev/null; do sleep 0.2; done
port=$(grep -o 'http [0-9]*' "$log" | head -1 | cut -d' ' -f2)
n=0
while pgrep -f 'bench/run.sh' >/dev/null; do
  taskset -c 1 curl -fs -o /dev/null "http://127.0.0.1:$port/dashboard/data" && n=$((n+1))
  sleep 1
done
echo "page polls: $n (port $port)"

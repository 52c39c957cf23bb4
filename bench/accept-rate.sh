#!/usr/bin/env bash
# Cost of the per-connection close event: accept rate against the Echo listener (1 byte each, so
# the close event is at Information) with Serilog at Information (event written) and Warning (not).
# Server pinned to cpu0, client to cpu1; runs alternate. Release builds first:
#   dotnet build src/KestrelTcp -c Release && dotnet build bench/AcceptRate -c Release
# Usage: bench/accept-rate.sh [rounds] [connections] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}; connections=${2:-20000}; concurrency=${3:-16}
server=src/KestrelTcp/bin/Release/net10.0/KestrelTcp.dll
client=bench/AcceptRate/bin/Release/net10.0/AcceptRate.dll
for round in $(seq 1 "$rounds"); do
  for level in Information Warning; do
    taskset -c 0 dotnet "$server" --KestrelTcp:Http:Port=18181 --KestrelTcp:Http:Address=127.0.0.1 \
      --KestrelTcp:Listeners:echo:Port=17107 --KestrelTcp:Listeners:echo:Address=127.0.0.1 \
      --KestrelTcp:Listeners:time:Enabled=false --KestrelTcp:Listeners:greeting:Enabled=false \
      --Serilog:MinimumLevel="$level" > /dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18181/health/ready > /dev/null && break; sleep 0.1; done
    cpu_before=$(awk '{print $14+$15}' /proc/$pid/stat)
    printf '%s round %s %-11s ' "$(date +%T)" "$round" "$level"
    result=$(taskset -c 1 dotnet "$client" 17107 "$connections" "$concurrency" x)
    cpu_after=$(awk '{print $14+$15}' /proc/$pid/stat)
    # Server CPU (user+system) per connection, warm-up included: min(2000, connections) extra.
    warm=$(( connections < 2000 ? connections : 2000 ))
    echo "$result; server CPU $(( (cpu_after - cpu_before) * 1000000 / $(getconf CLK_TCK) / (connections + warm) )) us/conn"
    kill "$pid"; wait "$pid" || true
  done
done

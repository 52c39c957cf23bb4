#!/usr/bin/env bash
# What one /metrics scrape costs with N Echo connections held: wall time per scrape (curl) and
# managed bytes allocated per scrape (the runtime's own dotnet_gc_heap_total_allocated_bytes_total,
# read from the scrapes themselves). Server pinned to cpu0, the held connections' client to cpu1.
# Release builds first: dotnet build -c Release src/KestrelTcp && dotnet build -c Release bench/KestrelTcp.Bench
# Usage: bench/scrape-cost.sh [connections ...]     (default: 0 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
server=${SERVER_DLL:-src/KestrelTcp/bin/Release/net10.0/KestrelTcp.dll}
bench=bench/KestrelTcp.Bench/bin/Release/net10.0/KestrelTcp.Bench.dll
scrapes=${SCRAPES:-50}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
allocated() { curl -s http://127.0.0.1:18282/metrics | awk '$1 ~ /^dotnet_gc_heap_total_allocated_bytes_total/ {print $2}'; }
for n in "${@:-0 10000}"; do
  taskset -c 0 dotnet "$server" --KestrelTcp:Http:Port=18282 --KestrelTcp:Http:Address=127.0.0.1 \
    --KestrelTcp:Listeners:echo:Port=17207 --KestrelTcp:Listeners:echo:Address=127.0.0.1 \
    --KestrelTcp:Listeners:time:Enabled=false --KestrelTcp:Listeners:greeting:Enabled=false > /dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18282/health/ready > /dev/null && break; sleep 0.1; done
  hold=""
  if [ "$n" -gt 0 ]; then
    DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 taskset -c 1 dotnet "$bench" hold --port 17207 --connections "$n" \
      --seconds 60 --ping-interval 1000 > /dev/null 2>&1 &
    hold=$!
    for _ in $(seq 1 600); do
      open=$(curl -s http://127.0.0.1:18282/metrics | awk '$1 ~ /^kestreltcp_connections_active/ {print $2}')
      [ "${open:-0}" -ge "$n" ] && break; sleep 0.1
    done
  fi
  for _ in 1 2 3 4 5; do curl -s -o /dev/null http://127.0.0.1:18282/metrics; done   # warm-up (JIT, buffers)
  before=$(allocated)
  times=$(for _ in $(seq 1 "$scrapes"); do curl -s -o /dev/null -w '%{time_total}\n' http://127.0.0.1:18282/metrics; done | sort -n)
  after=$(allocated)
  # Between the two reads: $scrapes timed scrapes plus the second read itself.
  per=$(( (${after%.*} - ${before%.*}) / (scrapes + 1) ))
  p50=$(echo "$times" | awk -v n="$scrapes" 'NR==int(n*0.5)+1 {printf "%.2f", $1*1000}')
  p99=$(echo "$times" | awk -v n="$scrapes" 'NR==int(n*0.99)+1 {printf "%.2f", $1*1000}')
  max=$(echo "$times" | tail -1 | awk '{printf "%.2f", $1*1000}')
  echo "connections=$n scrapes=$scrapes scrape_ms_p50=$p50 scrape_ms_p99=$p99 scrape_ms_max=$max allocated_bytes_per_scrape=$per"
  [ -n "$hold" ] && kill "$hold" 2>/dev/null; kill "$pid"; wait "$pid" 2>/dev/null || true
  [ -n "$hold" ] && wait "$hold" 2>/dev/null || true
done

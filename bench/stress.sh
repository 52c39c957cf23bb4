#!/usr/bin/env bash
# Bounded hostile load against a real KestrelTcp on loopback, then SIGTERM: prints what it survived.
# Starts the Release server with small limits (so floods hit them) on free loopback ports, runs
# bench/KestrelTcp.Stress for the given time, then stops the server and reports the drain.
# Usage: bench/stress.sh [seconds=30] [max_connections=300] [idle_timeout=00:00:03]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}; max=${2:-300}; idle=${3:-00:00:03}
dotnet build src/KestrelTcp -c Release -v q -nologo > /dev/null
dotnet build bench/KestrelTcp.Stress -c Release -v q -nologo > /dev/null
read -r http echo greeting time < <(python3 -c '
import socket
s=[socket.socket() for _ in range(4)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])
[x.close() for x in s]')
log=$(mktemp)
dotnet src/KestrelTcp/bin/Release/net10.0/KestrelTcp.dll \
  --KestrelTcp:Http:Address=127.0.0.1 --KestrelTcp:Http:Port="$http" \
  --KestrelTcp:Listeners:echo:Address=127.0.0.1 --KestrelTcp:Listeners:echo:Port="$echo" \
  --KestrelTcp:Listeners:greeting:Address=127.0.0.1 --KestrelTcp:Listeners:greeting:Port="$greeting" \
  --KestrelTcp:Listeners:time:Address=127.0.0.1 --KestrelTcp:Listeners:time:Port="$time" \
  --KestrelTcp:Limits:MaxConnections="$max" --KestrelTcp:Limits:IdleTimeout="$idle" \
  --KestrelTcp:Shutdown:DrainTimeout=00:00:05 --Serilog:MinimumLevel=Warning > "$log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$http/health/ready" > /dev/null && break; sleep 0.1; done
status=0
dotnet bench/KestrelTcp.Stress/bin/Release/net10.0/KestrelTcp.Stress.dll \
  --http "$http" --echo "$echo" --greeting "$greeting" --pid "$pid" --seconds "$seconds" || status=$?

# A few connections open across the stop: they must drain, and the process must exit 0.
exec 3<>/dev/tcp/127.0.0.1/"$greeting"; exec 4<>/dev/tcp/127.0.0.1/"$echo"
printf 'last words' >&4
start=$(date +%s%N)
kill -TERM "$pid"
wait "$pid" && code=0 || code=$?
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
echo "  SIGTERM with 2 open connections: exit code $code after $elapsed ms"
echo "    greeting saw: $(timeout 2 cat <&3 | tr -d '\r' | tr '\n' '|')"
echo "    echo returned: $(timeout 2 cat <&4)"
errors=$(grep -c ' ERR\] \| FTL\] ' "$log" || true)
echo "  server log lines at ERR/FTL: $errors; WRN rejection events: $(grep -c 'refused' "$log" || true)"
rm -f "$log"
trap - EXIT
[ "$status" -eq 0 ] && [ "$code" -eq 0 ] && [ "$errors" -eq 0 ]

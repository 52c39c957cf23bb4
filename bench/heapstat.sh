#!/usr/bin/env bash
# Live-heap or GC-pause snapshot of a running KestrelTcp (or any .NET process) over EventPipe.
#   bench/heapstat.sh PID heap [TOP]        live managed heap by type (induces one GC)
#   bench/heapstat.sh PID pauses [SECONDS]  each GC's pause, and thread-pool adjustments
#   bench/heapstat.sh PID allocs [SECONDS] [TOP]  what it allocates meanwhile, by type (sampled every ~100 KB)
# Needs the dotnet-trace global tool (`dotnet tool install -g dotnet-trace`), whose folder has the
# TraceEvent DLLs this builds against. docs/benchmarks.md used it for the held-connection heap table.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=$(ls -d "$HOME"/.dotnet/tools/.store/dotnet-trace/*/dotnet-trace/*/tools/*/any 2>/dev/null | tail -1 || true)
if [[ -z "$DIR" || ! -f "$DIR/Microsoft.Diagnostics.Tracing.TraceEvent.dll" ]]; then
  echo "dotnet-trace not found: dotnet tool install -g dotnet-trace" >&2; exit 2
fi
dotnet build -c Release "$ROOT/bench/HeapStat/HeapStat.csproj" -nologo -v q -p:TraceEventDir="$DIR" >&2
exec dotnet "$ROOT/bench/HeapStat/bin/Release/net10.0/KestrelTcp.HeapStat.dll" "$@"

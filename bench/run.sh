#!/usr/bin/env bash
# KestrelTcp benchmark: builds Release and publishes KestrelTcp as the Docker image does (Native AOT for
# this machine), starts it (default appsettings.json: logging and metrics on), the C epoll reference (reference/refserver.c) and the Go net reference
# (reference/refserver.go: a goroutine per connection, io.Copy) on free loopback ports, runs every
# plain scenario against all three, rotating which goes first each round, and prints a results table
# with ratios KestrelTcp / C reference and KestrelTcp / Go reference plus one machine-readable RESULT
# line per run and RATIO line per figure.
# The platform's floor, reference/kestrel-minimal (the least a Kestrel host can be: the slim builder, Kestrel's
# own socket transport, an Echo and a Time ConnectionHandler, one /health/ready endpoint, Native AOT like
# KestrelTcp), runs the start-up, one-connection ping-pong and accept cases too: its column shows how much of a
# gap to C or Go is Kestrel's and .NET's, and how much is KestrelTcp's own.
#
#   bench/run.sh                     full run (3 rounds, 10,000 and 19,000 held connections, TLS, start-up), about 9.5 minutes
#   bench/run.sh --quick             1 round, short windows, 2,000 held connections, about 2 minutes
#   options: --rounds N --seconds S --warmup S --server-warmup S --hold N --hold-large N --hold-seconds S --startup-runs N
#            --only "bulk pingpong_1 pingpong_100 accept_32 tls-bulk tls-handshake hold hold-large startup"
#                   (names separated by spaces or commas: --only tls-bulk,tls-handshake)  --no-build  --out DIR
#            --tls-key rsa|ec                     (TLS certificate: RSA 2048, the default, or ECDSA P-256)
#            --server-env "DOTNET_gcServer=0 …"   (extra environment for KestrelTcp only)
#            --server-args "--KestrelTcp:… …"     (extra command-line configuration for KestrelTcp)
#            --server-dll PATH                    (another KestrelTcp build, for A/B runs; implies --no-build of it;
#                                                  a path not ending in .dll is run as an executable: a Native AOT publish)
#            --jit                                (every case against the JIT Release build, `dotnet KestrelTcp.dll`,
#                                                  instead of what the Docker image runs: the Native AOT publish,
#                                                  bench/published/KestrelTcp, made by this script for this machine)
#            --greeting                          (also hold Greeting connections)
#            --no-go                              (without the Go reference)
#            --no-floor                           (without the minimal Kestrel host)
#
# Pinning (2-core machine): all servers on cpu0 (the Go one with GOMAXPROCS=1: one core, as for the others); the load on cpu1, except the one-connection
# ping-pong, where client and server share cpu0 so that per-message cost, not the VM's cross-core
# wake-up, is measured. Only loopback is ever loaded.
#
# TLS (tls-bulk, tls-handshake): KestrelTcp's own TLS on an Echo listener (echo-tls) against HAProxy
# terminating TLS (mode tcp, nbthread 1) in front of the C reference's Echo: HAProxy and the C server
# both on cpu0, so either side has one core; the load on cpu1. TLS 1.3 only on both sides, one
# self-signed certificate made with openssl for the run (in a temporary directory, removed at the end).
# The ratios' "reference" for these two cases is HAProxy + C (no Go figures). Needs haproxy and openssl.
#
# Go reference: built with the distribution's go (apt-get install golang-go, done here when go is missing
# and we are root), standard library only, no module downloads (GOPROXY=off, GOTOOLCHAIN=local), build cache
# in a temporary directory. Without go it is skipped and the Go columns show "—".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3 SECS=4 WARMUP=1 SERVER_WARMUP="" HOLD=10000 HOLD_LARGE=19000 HOLD_SECS=15 PING=5 STARTUP_RUNS=3 BUILD=1 GREETING=0 GO_ON=1 FLOOR_ON=1
ONLY="startup bulk pingpong_1 pingpong_100 accept_32 tls-bulk tls-handshake hold hold-large"
SERVER_ENV="" SERVER_ARGS="" OUT="" SERVER_DLL_OPT="" TLS_KEY=rsa AOT=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) ROUNDS=1 SECS=2 SERVER_WARMUP=1 HOLD=2000 HOLD_LARGE=4000 HOLD_SECS=4 PING=2 STARTUP_RUNS=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --server-warmup) SERVER_WARMUP=$2; shift ;;
    --hold) HOLD=$2; shift ;;
    --hold-large) HOLD_LARGE=$2; shift ;;
    --hold-seconds) HOLD_SECS=$2; shift ;;
    --startup-runs) STARTUP_RUNS=$2; shift ;;
    --only) ONLY=${2//,/ }; shift ;;
    --tls-key) TLS_KEY=$2; shift ;;
    --no-build) BUILD=0 ;;
    --out) OUT=$2; shift ;;
    --server-env) SERVER_ENV=$2; shift ;;
    --server-args) SERVER_ARGS=$2; shift ;;
    --server-dll) SERVER_DLL_OPT=$2; shift ;;
    --jit) AOT=0 ;;
    --greeting) GREETING=1 ;;
    --no-go) GO_ON=0 ;;
    --no-floor) FLOOR_ON=0 ;;
    -h|--help) sed -n '2,41p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
wants() { [[ " $ONLY " == *" $1 "* ]]; }
# The server's own warm-up: 3 s of each scenario for the JIT build (tiering), 1 s for the AOT executable (nothing to tier).
if [[ -z $SERVER_WARMUP ]]; then if [[ $AOT == 1 ]]; then SERVER_WARMUP=1; else SERVER_WARMUP=3; fi; fi
[[ $TLS_KEY == rsa || $TLS_KEY == ec ]] || { echo "--tls-key: rsa or ec, not '$TLS_KEY'" >&2; exit 2; }

# TLS cases need HAProxy (the reference's TLS) and openssl (the certificate). Without them they are skipped.
TLS_ON=0
HAPROXY=$(command -v haproxy || { [[ -x /usr/sbin/haproxy ]] && echo /usr/sbin/haproxy; } || true)
if wants tls-bulk || wants tls-handshake; then
  if [[ -n $HAPROXY ]] && command -v openssl >/dev/null; then
    TLS_ON=1
  else
    echo "tls-bulk, tls-handshake: need haproxy and openssl (apt-get install haproxy openssl); skipped" >&2
    ONLY=" $ONLY "; ONLY=${ONLY// tls-bulk / }; ONLY=${ONLY// tls-handshake / }
  fi
fi

OUT=${OUT:-$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: > "$RESULTS"

# 10,000 held connections need 10,000 descriptors in the client and as many in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FDS=$(ulimit -n)
if [[ "$FDS" != unlimited && $((HOLD + 256)) -gt $FDS ]]; then
  echo "open-files limit is $FDS: holding $((FDS - 256)) connections instead of $HOLD" >&2
  HOLD=$((FDS - 256))
fi

BENCH_DLL=$ROOT/bench/KestrelTcp.Bench/bin/Release/net10.0/KestrelTcp.Bench.dll
SERVER_DLL=${SERVER_DLL_OPT:-$ROOT/src/KestrelTcp/bin/Release/net10.0/KestrelTcp.dll}
# How the server is started: `dotnet X.dll` for a build, the file itself for a Native AOT executable.
server_command() { if [[ $SERVER_DLL == *.dll ]]; then echo dotnet "$SERVER_DLL"; else echo "$SERVER_DLL"; fi; }
REFSERVER=$ROOT/bench/reference/build/refserver
PUBLISHED=$ROOT/bench/published
[[ $AOT == 1 && -z $SERVER_DLL_OPT ]] && SERVER_DLL=$PUBLISHED/KestrelTcp
REFSERVER_GO=$ROOT/bench/reference/build/refserver-go
FLOOR_SERVER=$ROOT/bench/reference/build/kestrel-minimal/KestrelMinimal
if [[ $GO_ON == 1 ]] && ! command -v go >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "== go missing: apt-get install golang-go" >&2
    apt-get install -y -q golang-go >&2 || { apt-get update -q >&2 && apt-get install -y -q golang-go >&2; } || true
  fi
  command -v go >/dev/null || echo "go missing (apt-get install golang-go): the Go reference is skipped" >&2
fi
if [[ $BUILD == 1 ]]; then
  echo "== build (Release)" >&2
  # The AOT publish below builds the server itself; the JIT build is what --jit (or --server-dll elsewhere) runs.
  if [[ $AOT == 0 || -n $SERVER_DLL_OPT ]]; then
    dotnet build -c Release "$ROOT/src/KestrelTcp/KestrelTcp.csproj" -nologo -v q >&2
  fi
  dotnet build -c Release "$ROOT/bench/KestrelTcp.Bench/KestrelTcp.Bench.csproj" -nologo -v q >&2
  mkdir -p "$ROOT/bench/reference/build"
  cc -O2 -o "$REFSERVER" "$ROOT/bench/reference/refserver.c"
  if { wants startup || [[ $AOT == 1 ]]; } && [[ -z $SERVER_DLL_OPT ]]; then
    # The start-up case runs the server as the Docker image does: published for this machine (Native AOT).
    dotnet publish -c Release -a "$(dotnet --info | awk '/RID:/{print $2; exit}' | sed 's/^linux-//')" \
      "$ROOT/src/KestrelTcp/KestrelTcp.csproj" -o "$PUBLISHED" -nologo -v q >&2
  fi
fi
if [[ $GO_ON == 1 ]] && command -v go >/dev/null && [[ $BUILD == 1 || ! -x $REFSERVER_GO ]]; then
  mkdir -p "$ROOT/bench/reference/build"
  GO_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kestreltcp-bench-go.XXXXXX")
  (cd "$GO_TMP" && env GOTOOLCHAIN=local GOPROXY=off GOFLAGS= GO111MODULE= GOCACHE="$GO_TMP/cache" GOPATH="$GO_TMP/path" \
     go build -trimpath -o "$REFSERVER_GO" "$ROOT/bench/reference/refserver.go") >&2 || { echo "go build failed: the Go reference is skipped" >&2; rm -f "$REFSERVER_GO"; }
  chmod -R u+w "$GO_TMP" 2>/dev/null || true; rm -rf "$GO_TMP"
fi
if [[ $GO_ON == 1 && ! -x $REFSERVER_GO ]]; then GO_ON=0; fi
if [[ $FLOOR_ON == 1 && ( $BUILD == 1 || ! -x $FLOOR_SERVER ) ]]; then
  echo "== publish the minimal Kestrel host (Native AOT)" >&2
  dotnet publish -c Release -a "$(dotnet --info | awk '/RID:/{print $2; exit}' | sed 's/^linux-//')" \
    "$ROOT/bench/reference/kestrel-minimal/KestrelMinimal.csproj" -o "$(dirname "$FLOOR_SERVER")" -nologo -v q >&2 \
    || { echo "publish of the minimal Kestrel host failed: its column is skipped" >&2; rm -f "$FLOOR_SERVER"; }
fi
if [[ $FLOOR_ON == 1 && ! -x $FLOOR_SERVER ]]; then FLOOR_ON=0; fi
bench() { DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 dotnet "$BENCH_DLL" "$@"; }

read -r K_ECHO K_TIME K_GREET K_HTTP R_ECHO R_TIME S_HTTP K_TLS H_TLS G_ECHO G_TIME S_ECHO S_TIME F_ECHO F_TIME F_HTTP <<<"$(bench ports 16)"
# Set when the TLS cases run: the certificate's directory, HAProxy's process, whether KestrelTcp speaks TLS.
TLS_DIR="" HAP_PID="" K_TLS_OK=0
kestrel_args() {  # $1 echo, $2 time, $3 greeting, $4 http, [$5 TLS echo: the echo-tls listener, CONTRACT §6 keys]
  echo "--KestrelTcp:Listeners:echo:Port=$1 --KestrelTcp:Listeners:echo:Address=127.0.0.1" \
       "--KestrelTcp:Listeners:time:Port=$2 --KestrelTcp:Listeners:time:Address=127.0.0.1" \
       "--KestrelTcp:Listeners:greeting:Port=$3 --KestrelTcp:Listeners:greeting:Address=127.0.0.1" \
       "--KestrelTcp:Http:Port=$4 --KestrelTcp:Http:Address=127.0.0.1"
  if [[ -n ${5:-} ]]; then
    local l=--KestrelTcp:Listeners:echo-tls
    echo "$l:Handler=Echo $l:Port=$5 $l:Address=127.0.0.1" \
         "$l:Tls:Certificate:Path=$TLS_DIR/server.pem $l:Tls:Certificate:KeyPath=$TLS_DIR/server.key $l:Tls:SslProtocols:0=Tls13"
  fi
  echo "$SERVER_ARGS ${PHASE_ARGS:-}"
}

{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r)"
  echo "dotnet: $(dotnet --version) SDK; $(dotnet --list-runtimes | grep AspNetCore | tail -1)"
  if [[ $GO_ON == 1 ]]; then echo "go reference: $(go version 2>/dev/null | cut -d' ' -f3-4), GOMAXPROCS=1, goroutine per connection, io.Copy"; fi
  if [[ $FLOOR_ON == 1 ]]; then echo "kestrel floor: reference/kestrel-minimal, Native AOT, slim builder, Kestrel's socket transport (startup, pingpong_1, accept_32)"; fi
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo '+dirty')"
  echo "settings: rounds=$ROUNDS seconds=$SECS warmup=$WARMUP hold=$HOLD hold_seconds=$HOLD_SECS open_files=$FDS server_env='$SERVER_ENV' server_args='$SERVER_ARGS' server=$(server_command)"
  if [[ $TLS_ON == 1 ]]; then
    echo "tls: TLS 1.3, certificate $([[ $TLS_KEY == rsa ]] && echo 'RSA 2048' || echo 'ECDSA P-256') (self-signed, made for the run); $("$HAPROXY" -v | head -1 | cut -d' ' -f1-3); $(openssl version)"
  fi
} | tee "$OUT/machine.txt" >&2

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n $TLS_DIR ]]; then rm -rf "$TLS_DIR"; fi
}
trap cleanup EXIT

if [[ $TLS_ON == 1 ]]; then
  # One certificate for both sides. RSA 2048 by default: the server's share of a handshake (~1.2 ms of CPU on
  # the 2-vCPU VM, 0.4 ms of it the RSA signature) is then close to the .NET client's (~1.5 ms), so a server
  # slower than HAProxy + C shows in handshakes/s. With ECDSA P-256 (--tls-key ec) the server's share falls to
  # ~0.85 ms, the client's core is the limit for both sides, and only the per-server-core row tells them apart.
  TLS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kestreltcp-bench-tls.XXXXXX")
  if [[ $TLS_KEY == rsa ]]; then newkey=(-newkey rsa:2048); else newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1); fi
  openssl req -x509 "${newkey[@]}" -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.pem" 2>"$OUT/openssl.log"
  cat "$TLS_DIR/server.pem" "$TLS_DIR/server.key" > "$TLS_DIR/combined.pem"   # HAProxy's crt: certificate then key
  chmod 600 "$TLS_DIR/server.key" "$TLS_DIR/combined.pem"
fi

if wants startup; then
  echo "== startup: process start → /health/ready 200, idle RSS (unpinned, as a user starts it)" >&2
  # shellcheck disable=SC2046,SC2086
  if [[ -z $SERVER_DLL_OPT && -x $PUBLISHED/KestrelTcp ]]; then
    # As the Docker image runs it: the Native AOT executable, in its folder, with the image's environment.
    # shellcheck disable=SC2046,SC2086
    env $SERVER_ENV ASPNETCORE_HTTP_PORTS= KestrelTcp__Shutdown__DrainTimeout=00:00:07 dotnet "$BENCH_DLL" startup --target kestreltcp \
      --runs "$STARTUP_RUNS" --http-port "$S_HTTP" --cwd "$PUBLISHED" --case startup -- \
      "$PUBLISHED/KestrelTcp" $(kestrel_args 0 0 0 "$S_HTTP") | tee -a "$RESULTS"
  else
    # shellcheck disable=SC2046,SC2086
    env $SERVER_ENV dotnet "$BENCH_DLL" startup --target kestreltcp --runs "$STARTUP_RUNS" --http-port "$S_HTTP" --case startup -- \
      $(server_command) $(kestrel_args 0 0 0 "$S_HTTP") | tee -a "$RESULTS"
  fi
  # The references have no HTTP port: ready when their echo port accepts a connection.
  bench startup --target reference --runs "$STARTUP_RUNS" --tcp-port "$S_ECHO" --case startup -- \
    "$REFSERVER" "$S_ECHO" "$S_TIME" 127.0.0.1 | tee -a "$RESULTS"
  if [[ $GO_ON == 1 ]]; then
    GOMAXPROCS=1 bench startup --target reference-go --runs "$STARTUP_RUNS" --tcp-port "$S_ECHO" --case startup -- \
      "$REFSERVER_GO" "$S_ECHO" "$S_TIME" 127.0.0.1 | tee -a "$RESULTS"
  fi
  # The minimal Kestrel host has an HTTP port: ready when /health/ready answers 200, as for KestrelTcp.
  if [[ $FLOOR_ON == 1 ]]; then
    env ASPNETCORE_HTTP_PORTS= dotnet "$BENCH_DLL" startup --target kestrel-minimal --runs "$STARTUP_RUNS" --http-port "$S_HTTP" --case startup -- \
      "$FLOOR_SERVER" 0 0 "$S_HTTP" 127.0.0.1 | tee -a "$RESULTS"
  fi
fi

# A TLS 1.3 handshake with the port, as openssl's client makes it: 0 when it completed.
tls_handshakes() { timeout 5 openssl s_client -connect "127.0.0.1:$1" -tls1_3 </dev/null >/dev/null 2>&1; }

SUFFIX=0
start_servers() {
  SUFFIX=$((SUFFIX + 1))
  local tls_port=""
  if [[ $TLS_ON == 1 ]]; then tls_port=$K_TLS; fi
  echo "== starting servers on cpu0: KestrelTcp echo $K_ECHO time $K_TIME greeting $K_GREET http $K_HTTP${tls_port:+ echo-tls $tls_port}; reference echo $R_ECHO time $R_TIME${tls_port:+; HAProxy TLS $H_TLS → reference echo}$([[ $GO_ON == 1 ]] && echo "; Go reference echo $G_ECHO time $G_TIME")" >&2
  taskset -c 0 "$REFSERVER" "$R_ECHO" "$R_TIME" 127.0.0.1 > "$OUT/reference.$SUFFIX.log" 2>&1 &
  REF_PID=$!; PIDS+=("$REF_PID")
  GO_PID=""
  if [[ $GO_ON == 1 ]]; then
    GOMAXPROCS=1 taskset -c 0 "$REFSERVER_GO" "$G_ECHO" "$G_TIME" 127.0.0.1 > "$OUT/reference-go.$SUFFIX.log" 2>&1 &
    GO_PID=$!; PIDS+=("$GO_PID")
  fi
  FLOOR_PID=""
  if [[ $FLOOR_ON == 1 ]]; then
    env ASPNETCORE_HTTP_PORTS= taskset -c 0 "$FLOOR_SERVER" "$F_ECHO" "$F_TIME" "$F_HTTP" 127.0.0.1 > "$OUT/kestrel-minimal.$SUFFIX.log" 2>&1 &
    FLOOR_PID=$!; PIDS+=("$FLOOR_PID")
  fi
  HAP_PID=""
  if [[ $TLS_ON == 1 ]]; then
    # HAProxy as it would terminate TLS for a TCP service: one thread, TLS 1.3, no logging (nor has the C server).
    cat > "$TLS_DIR/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend echo_tls
    bind 127.0.0.1:$H_TLS ssl crt $TLS_DIR/combined.pem ssl-min-ver TLSv1.3
    default_backend refserver_echo
backend refserver_echo
    server s1 127.0.0.1:$R_ECHO
CFG
    cp "$TLS_DIR/haproxy.cfg" "$OUT/haproxy.cfg"
    taskset -c 0 "$HAPROXY" -db -f "$TLS_DIR/haproxy.cfg" > "$OUT/haproxy.$SUFFIX.log" 2>&1 &
    HAP_PID=$!; PIDS+=("$HAP_PID")
  fi
  # shellcheck disable=SC2046,SC2086
  (cd "$(dirname "$SERVER_DLL")" && exec env $SERVER_ENV taskset -c 0 $(server_command) $(kestrel_args "$K_ECHO" "$K_TIME" "$K_GREET" "$K_HTTP" $tls_port)) > "$OUT/kestreltcp.$SUFFIX.log" 2>&1 &
  K_PID=$!; PIDS+=("$K_PID")
  local ready=0
  for _ in $(seq 300); do
    if curl -sf "http://127.0.0.1:$K_HTTP/health/ready" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$K_PID" 2>/dev/null || { echo "KestrelTcp exited:" >&2; cat "$OUT/kestreltcp.$SUFFIX.log" >&2; exit 1; }
    sleep 0.1
  done
  [[ $ready == 1 ]] || { echo "KestrelTcp never became ready" >&2; exit 1; }
  if [[ $GO_ON == 1 ]]; then
    for _ in $(seq 50); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$G_TIME") 2>/dev/null; then break; fi
      kill -0 "$GO_PID" 2>/dev/null || { echo "Go reference exited:" >&2; cat "$OUT/reference-go.$SUFFIX.log" >&2; exit 1; }
      sleep 0.1
    done
  fi
  if [[ $FLOOR_ON == 1 ]]; then
    for _ in $(seq 100); do
      if curl -sf "http://127.0.0.1:$F_HTTP/health/ready" >/dev/null 2>&1; then break; fi
      kill -0 "$FLOOR_PID" 2>/dev/null || { echo "the minimal Kestrel host exited:" >&2; cat "$OUT/kestrel-minimal.$SUFFIX.log" >&2; exit 1; }
      sleep 0.1
    done
  fi
  if [[ $TLS_ON == 1 ]]; then
    for _ in $(seq 50); do
      if tls_handshakes "$H_TLS"; then break; fi
      kill -0 "$HAP_PID" 2>/dev/null || { echo "HAProxy exited:" >&2; cat "$OUT/haproxy.$SUFFIX.log" >&2; exit 1; }
      sleep 0.1
    done
    tls_handshakes "$H_TLS" || { echo "HAProxy never completed a TLS handshake on $H_TLS" >&2; exit 1; }
    # A build without TLS ignores the Tls keys and serves plain Echo there: the TLS cases then measure HAProxy + C only.
    if tls_handshakes "$K_TLS"; then
      K_TLS_OK=1
    else
      K_TLS_OK=0
      echo "!! KestrelTcp's echo-tls listener (port $K_TLS) did not complete a TLS 1.3 handshake (a build without TLS?):" \
           "tls-bulk and tls-handshake run against HAProxy + C only" >&2
    fi
  fi
}
stop_servers() {
  kill "$K_PID" "$REF_PID" ${HAP_PID:+"$HAP_PID"} ${GO_PID:+"$GO_PID"} ${FLOOR_PID:+"$FLOOR_PID"} 2>/dev/null || true
  wait "$K_PID" "$REF_PID" ${HAP_PID:+"$HAP_PID"} ${GO_PID:+"$GO_PID"} ${FLOOR_PID:+"$FLOOR_PID"} 2>/dev/null || true
}
start_servers

run_case() {  # $1 case, $2 round, $3 target, $4 client cpu, then bench arguments
  local name=$1 round=$2 target=$3 cpu=$4; shift 4
  local pid port_echo port_time port_tls
  case $target in
    kestreltcp) pid=$K_PID port_echo=$K_ECHO port_time=$K_TIME port_tls=$K_TLS ;;
    reference-go) pid=$GO_PID port_echo=$G_ECHO port_time=$G_TIME port_tls="" ;;
    kestrel-minimal) pid=$FLOOR_PID port_echo=$F_ECHO port_time=$F_TIME port_tls="" ;;
    *) pid=$REF_PID port_echo=$R_ECHO port_time=$R_TIME port_tls=$H_TLS ;;
  esac
  # The TLS reference is two processes, HAProxy and the C server behind it: their CPU is summed.
  local args=("$@")
  if [[ $name == tls-* && $target == reference ]]; then pid="$HAP_PID,$REF_PID"; args+=(--stack haproxy+refserver); fi
  args=("${args[@]//@ECHO/$port_echo}"); args=("${args[@]//@TIME/$port_time}"); args=("${args[@]//@TLS/$port_tls}")
  DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 taskset -c "$cpu" dotnet "$BENCH_DLL" "${args[@]}" --target "$target" --pid "$pid" --case "$name" --round "$round" \
    --warmup "$WARMUP" --seconds "$SECS" | tee -a "$RESULTS"
}

# TLS: KestrelTcp (when its TLS answered) against HAProxy + C only, never the Go reference.
tls_target() { [[ $1 == reference || ( $1 == kestreltcp && $K_TLS_OK == 1 ) ]]; }

# The JIT's warm-up, once per server start: each plain scenario run against KestrelTcp for SERVER_WARMUP seconds,
# results discarded. A JIT-compiled server starts on unoptimised code and tiers up as methods get hot; with
# the server on one core the tiering thread competes with the work, and a 1 s warm-up before a 4 s window left
# the accept path in instrumented tiers (docs/benchmarks.md, round 6). The C and Go servers are compiled ahead.
warm_server() {
  [[ $SERVER_WARMUP == 0 ]] && return 0
  echo "== warming KestrelTcp up: ${SERVER_WARMUP}s of each plain scenario (not measured)" >&2
  local w=(--target kestreltcp --pid "$K_PID" --case warmup --round 0 --warmup 0 --seconds "$SERVER_WARMUP")
  wants bulk && taskset -c 1 dotnet "$BENCH_DLL" bulk --port "$K_ECHO" --connections 64 --chunk 16384 --window 65536 "${w[@]}" >/dev/null 2>&1 || true
  wants pingpong_1 && taskset -c 0 dotnet "$BENCH_DLL" pingpong --port "$K_ECHO" --connections 1 --size 64 "${w[@]}" >/dev/null 2>&1 || true
  wants pingpong_100 && taskset -c 1 dotnet "$BENCH_DLL" pingpong --port "$K_ECHO" --connections 100 --size 64 "${w[@]}" >/dev/null 2>&1 || true
  wants accept_32 && taskset -c 1 dotnet "$BENCH_DLL" accept --port "$K_TIME" --workers 32 "${w[@]}" >/dev/null 2>&1 || true
}
warm_server

TARGETS=(kestreltcp reference)
if [[ $GO_ON == 1 ]]; then TARGETS+=(reference-go); fi
if [[ $FLOOR_ON == 1 ]]; then TARGETS+=(kestrel-minimal); fi
# The minimal Kestrel host runs the cases where KestrelTcp's gap to a reference is the platform question.
floor_case() { [[ $1 != kestrel-minimal || $2 == pingpong_1 || $2 == accept_32 ]]; }
for round in $(seq "$ROUNDS"); do
  # Rotated each round, so that over 3 rounds every server goes first, second and last once.
  order=()
  for i in "${!TARGETS[@]}"; do order+=("${TARGETS[$(( (i + round - 1) % ${#TARGETS[@]} ))]}"); done
  echo "== round $round of $ROUNDS (${order[*]})" >&2
  for t in "${order[@]}"; do
    wants bulk && floor_case "$t" bulk && run_case bulk "$round" "$t" 1 bulk --port @ECHO --connections 64 --chunk 16384 --window 65536
  done
  for t in "${order[@]}"; do
    wants pingpong_1 && floor_case "$t" pingpong_1 && run_case pingpong_1 "$round" "$t" 0 pingpong --port @ECHO --connections 1 --size 64
  done
  for t in "${order[@]}"; do
    wants pingpong_100 && floor_case "$t" pingpong_100 && run_case pingpong_100 "$round" "$t" 1 pingpong --port @ECHO --connections 100 --size 64
  done
  for t in "${order[@]}"; do
    wants accept_32 && floor_case "$t" accept_32 && run_case accept_32 "$round" "$t" 1 accept --port @TIME --workers 32
  done
  for t in "${order[@]}"; do
    wants tls-bulk && floor_case "$t" tls-bulk && tls_target "$t" && run_case tls-bulk "$round" "$t" 1 tls-bulk --port @TLS --connections 64 --chunk 16384 --window 65536
  done
  for t in "${order[@]}"; do
    wants tls-handshake && floor_case "$t" tls-handshake && tls_target "$t" && run_case tls-handshake "$round" "$t" 1 tls-handshake --port @TLS --connections 16 --size 16
  done
done

hold_case() {  # $1 target, $2 protocol, [$3 connections: $HOLD]
  local target=$1 protocol=$2 n=${3:-$HOLD} pid port http=()
  if [[ $target == kestreltcp ]]; then
    pid=$K_PID; port=$K_ECHO; http=(--http-port "$K_HTTP")
    [[ $protocol == greeting ]] && port=$K_GREET
  elif [[ $target == reference-go ]]; then
    pid=$GO_PID; port=$G_ECHO
  else
    pid=$REF_PID; port=$R_ECHO
  fi
  DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 taskset -c 1 dotnet "$BENCH_DLL" hold --port "$port" --protocol "$protocol" \
    --connections "$n" --seconds "$HOLD_SECS" --ping-interval "$PING" "${http[@]}" \
    --target "$target" --pid "$pid" --case "hold_${protocol}_$n" --round 1 | tee -a "$RESULTS"
}
if wants hold; then
  echo "== hold: $HOLD connections for ${HOLD_SECS}s" >&2
  # Fresh servers, so that memory per connection does not depend on what ran before
  # (without the TLS listener and HAProxy: holding is plain Echo).
  stop_servers
  TLS_ON=0
  start_servers
  hold_case kestreltcp echo
  hold_case reference echo
  if [[ $GO_ON == 1 ]]; then
    # io.Copy(conn, conn) splices through a pipe on Linux: 3 descriptors per held connection (socket + pipe).
    # Past the open-files limit accept fails with EMFILE and the rest wait in the backlog unanswered,
    # so the Go reference holds only what fits, as its own case (no KestrelTcp figure to pair with).
    GO_HOLD=$HOLD
    if [[ "$FDS" != unlimited && $((3 * HOLD + 256)) -gt $FDS ]]; then
      GO_HOLD=$(( (FDS - 256) / 3 / 1000 * 1000 ))
      echo "Go reference: 3 descriptors per held connection, open-files limit $FDS: holding $GO_HOLD instead of $HOLD" >&2
    fi
    hold_case reference-go echo "$GO_HOLD"
  fi
  if [[ $GREETING == 1 ]]; then
    stop_servers
    start_servers
    hold_case kestreltcp greeting
  fi
fi
if wants hold-large && [[ $HOLD_LARGE -gt 0 ]]; then
  # As many as the open-files limit leaves room for (client and server are separate processes, each with the limit).
  if [[ "$FDS" != unlimited && $((HOLD_LARGE + 256)) -gt $FDS ]]; then
    echo "open-files limit is $FDS: holding $((FDS - 256)) connections instead of $HOLD_LARGE" >&2
    HOLD_LARGE=$((FDS - 256))
  fi
  echo "== hold-large: $HOLD_LARGE connections for ${HOLD_SECS}s (KestrelTcp and the C reference; Go's 3 descriptors per connection do not fit)" >&2
  stop_servers
  TLS_ON=0
  # The default configuration caps a listener at 10,000 connections (CONTRACT §2): raised here, as an operator would.
  PHASE_ARGS="--KestrelTcp:Listeners:echo:Limits:MaxConnections=$((HOLD_LARGE + 100))"
  start_servers
  PHASE_ARGS=""
  hold_case kestreltcp echo "$HOLD_LARGE"
  hold_case reference echo "$HOLD_LARGE"
fi

echo >&2
echo "== results ($OUT)" >&2
cat "$OUT/machine.txt"
dotnet "$BENCH_DLL" report "$RESULTS" | tee "$OUT/report.txt"
dotnet "$BENCH_DLL" report "$RESULTS" --markdown > "$OUT/report.md"

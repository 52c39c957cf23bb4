# KestrelTcp container image. Build:  docker build -t kestreltcp .
# Multi-architecture:                 docker buildx build --platform linux/amd64,linux/arm64 -t kestreltcp .
# Layout after dotnet-docker's samples/aspnetapp: https://github.com/dotnet/dotnet-docker/tree/main/samples
# tests/KestrelTcp.Tests/Deployment replays this build stage and runs its output with this file's
# ENTRYPOINT, ENV and HEALTHCHECK, so keep its RUN steps plain `dotnet` commands.

# The SDK stage runs on the build machine's own architecture and cross-compiles for the target's, without
# emulation: the server is published Native AOT (one native executable, ready in ~60 ms; docs/benchmarks.md),
# which links with the target's C toolchain. The -aot SDK image brings clang and llvm for its own architecture;
# deploy/aot-toolchain.sh adds the cross linker and zlib of the other one when TARGETARCH differs (a no-op otherwise).
FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk:10.0-noble-aot AS build
ARG TARGETARCH
ARG BUILDARCH
WORKDIR /source
COPY --link deploy/aot-toolchain.sh deploy/
RUN deploy/aot-toolchain.sh $TARGETARCH $BUILDARCH

# Restore as its own layer: it is rebuilt only when a project file or central package version changes.
COPY --link Directory.Build.props Directory.Packages.props ./
COPY --link src/KestrelTcp/KestrelTcp.csproj src/KestrelTcp/
COPY --link src/KestrelTcp.Transport/KestrelTcp.Transport.csproj src/KestrelTcp.Transport/
RUN dotnet restore src/KestrelTcp/KestrelTcp.csproj -a $TARGETARCH

# The code, the analyzer settings the build enforces, and the appsettings.json the project copies next to the binary.
# A publish for a runtime is Native AOT (KestrelTcp.csproj): /app holds the executable and appsettings.json only.
COPY --link .editorconfig appsettings.json ./
COPY --link src/ src/
RUN dotnet publish src/KestrelTcp/KestrelTcp.csproj -a $TARGETARCH --no-restore -c Release -o /app


# runtime-deps: the native libraries a self-contained .NET executable needs (libc, OpenSSL for TLS), no .NET runtime.
FROM mcr.microsoft.com/dotnet/runtime-deps:10.0
# echo, time, greeting, and the HTTP management port (health, metrics), as in appsettings.json.
EXPOSE 7007 7013 7001 8080
# ASPNETCORE_HTTP_PORTS: the .NET base images set 8080 for a plain ASP.NET Core app; KestrelTcp binds its
#   endpoints from its own configuration (KestrelTcp:Http:Port), so the setting would only make Kestrel
#   warn "Overriding address(es) 'http://*:8080'" at every start.
# KestrelTcp__Shutdown__DrainTimeout: `docker stop` sends SIGTERM and kills after 10 s; a 7 s drain
#   leaves room for the final abort and the process exit. Kubernetes sets its own (deploy/kubernetes).
# DOTNET_*: the runtime's container defaults are kept on purpose: it already sizes the GC heap and
#   thread pool from the container's memory and CPU limits (Server GC with DATAS adapts its heap count),
#   and diagnostics stay enabled so dotnet-counters/dotnet-trace can attach through /tmp. The base image
#   sets DOTNET_RUNNING_IN_CONTAINER=true and APP_UID=1654.
ENV ASPNETCORE_HTTP_PORTS= \
    KestrelTcp__Shutdown__DrainTimeout=00:00:07
WORKDIR /app
COPY --link --from=build /app .
USER $APP_UID
# The server binary answers its own health check (GET /health/ready on KestrelTcp:Http:Port): no curl, no shell.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/app/KestrelTcp", "--health-check"]
# Exec form: the server is PID 1 and receives docker stop's SIGTERM itself, which starts the drain.
ENTRYPOINT ["./KestrelTcp"]

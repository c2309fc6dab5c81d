# syntax=docker/dockerfile:1
# Image of the ingest service, built from a clean checkout of this workspace:
#   docker build -f compose/ingest.Dockerfile -t accoreboot-ingest:<git-sha> .
# Stage 1 compiles `ingest` in release mode; stage 2 is a slim Debian with only the binary,
# running as an unprivileged user that owns the WAL directory.

FROM rust:1.95-slim-bookworm AS builder
# aws-lc-sys (TLS) may need cmake; gcc and libc6-dev come with the image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ingest \
    && install -m 0755 target/release/ingest /usr/local/bin/ingest

FROM debian:bookworm-slim AS runtime
# Same uid/gid as the data directories on the instance's volume (terraform compute module).
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" ingest \
    && useradd --system --uid "${APP_UID}" --gid ingest --home-dir /var/lib/ingest --shell /usr/sbin/nologin ingest \
    && install -d -o ingest -g ingest -m 0750 /var/lib/ingest /var/lib/ingest/wal
COPY --from=builder /usr/local/bin/ingest /usr/local/bin/ingest
USER ingest:ingest
WORKDIR /var/lib/ingest
ENV INGEST_WAL_DIR=/var/lib/ingest/wal \
    INGEST_HTTP_LISTEN=0.0.0.0:8080 \
    INGEST_HEALTHCHECK_ADDR=127.0.0.1:8080 \
    INGEST_SHUTDOWN_DEADLINE=20s
VOLUME ["/var/lib/ingest/wal"]
EXPOSE 1883 8883 8083 8080
STOPSIGNAL SIGTERM
# The ingest's own probe: GET /readyz on 127.0.0.1:8080 (no curl in the image).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/ingest", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/ingest"]
CMD ["run"]

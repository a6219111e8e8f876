# certlake: worker and starter images.
#
#   docker build -t certlake .                 # runtime image (worker by default)
#   docker run --rm certlake certlake-starter --help
#
# Two stages: a Go builder with cgo (DuckDB is a C++ library linked in through
# duckdb-go's bundled static libraries) and a slim Debian runtime. GO_VERSION
# must match the go directive of go.mod (checked by .ci/compose-check.sh).
ARG GO_VERSION=1.26
ARG DEBIAN_RELEASE=bookworm

FROM golang:${GO_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
# Modules first, so that a code change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# cgo is required: DuckDB is C++. The builder image has gcc and g++.
ENV CGO_ENABLED=1
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/certlake-worker ./worker && \
    go build -trimpath -ldflags="-s -w" -o /out/certlake-starter ./starter

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates for the CT logs and Temporal Cloud over TLS; libstdc++ for
# DuckDB; tzdata for schedule time zones shown by the starter.
RUN apt-get update && \
    apt-get install -y --no-install-recommends ca-certificates libstdc++6 tzdata && \
    rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin certlake && \
    mkdir -p /data/lake /etc/certlake && chown -R certlake:certlake /data
# A new named volume mounted at /data/lake starts with this ownership.
COPY --from=build /out/certlake-worker /out/certlake-starter /usr/local/bin/
COPY certlake.example.yaml /etc/certlake/certlake.example.yaml
USER certlake
WORKDIR /data
VOLUME ["/data"]
# /metrics and /healthz (worker.metrics_address).
EXPOSE 9090
ENTRYPOINT ["certlake-worker"]
CMD ["--config", "/etc/certlake/certlake.yaml"]

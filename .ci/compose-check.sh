#!/usr/bin/env bash
# Checks the deployment files without a Docker engine:
#  1. docker-compose.yml is valid (docker-compose config, from Debian's
#     docker-compose package, installed when missing);
#  2. the Dockerfile builds with the Go version go.mod asks for.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker-compose >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "compose-check: docker-compose is missing and apt-get is not available" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "compose-check: installing docker-compose" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq docker-compose >/dev/null
fi

docker-compose -f docker-compose.yml config -q
echo "compose-check: docker-compose.yml is valid ($(docker-compose version --short 2>/dev/null || echo docker-compose))"

# go.mod's go directive ("1.26.0") against the Dockerfile's GO_VERSION
# ("1.26": the newest patch release of the same Go version).
gomod=$(awk '$1 == "go" { print $2; exit }' go.mod)
docker=$(sed -n 's/^ARG GO_VERSION=\([0-9.]*\).*/\1/p' Dockerfile | head -n 1)
if [ -z "$gomod" ] || [ -z "$docker" ]; then
  echo "compose-check: cannot read the Go version (go.mod: '$gomod', Dockerfile: '$docker')" >&2
  exit 1
fi
if [ "$(echo "$gomod" | cut -d. -f1,2)" != "$(echo "$docker" | cut -d. -f1,2)" ]; then
  echo "compose-check: Dockerfile GO_VERSION=$docker but go.mod says go $gomod" >&2
  exit 1
fi
if ! grep -q '^FROM golang:${GO_VERSION}' Dockerfile; then
  echo "compose-check: the Dockerfile's build stage does not use golang:\${GO_VERSION}" >&2
  exit 1
fi
echo "compose-check: Dockerfile Go $docker matches go.mod go $gomod"

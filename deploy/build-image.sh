#!/usr/bin/env bash
# build-image.sh [TAG]: builds the static programs the image holds and the
# image, with podman (offline: the image starts FROM scratch). Run it from
# anywhere in the repository; GOARCH picks the image's architecture.
# Prints the image's ID on the last line.
set -euo pipefail
tag=${1:-mp:dev}
root=$(cd "$(dirname "$0")/.." && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cd "$root"
export CGO_ENABLED=0 GOOS=linux
go build -trimpath -o "$ctx/poolworker" ./cmd/poolworker
go build -trimpath -o "$ctx/approximate_pi" ./examples/approximate_pi/cluster
mkdir "$ctx/cache"
podman build --pull=never --file deploy/Containerfile --tag "$tag" "$ctx" >&2
podman image inspect --format '{{.Id}}' "$tag"

# syntax=docker/dockerfile:1
#
# One image with both binaries (docs/install.md, "The image"):
#   /usr/local/bin/nodereboot-detector    the DaemonSet
#   /usr/local/bin/nodereboot-controller  the Deployment
#   /usr/bin/nsenter                      for the detector's reboot method "command"
# There is no ENTRYPOINT: the manifests name the binary (command:).
#
#   docker build --build-arg VERSION=v0.1.0 -t ghcr.io/nodereboot/nodereboot:v0.1.0 .
#
# Base images are pinned by tag here; pin them by digest in your release
# pipeline (--build-arg RUNTIME_IMAGE=gcr.io/distroless/base-debian12:nonroot@sha256:...).
# The tests in e2e/deploy lint this file (pinned tags, USER, no ADD of URLs)
# and check that the binaries' paths match the manifests.

ARG GO_IMAGE=golang:1.26-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/base-debian12:nonroot

# Build both binaries on the build platform, for the target platform.
FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd/ cmd/
COPY pkg/ pkg/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath \
      -ldflags "-s -w -X github.com/nodereboot/nodereboot/pkg/version.Version=${VERSION}" \
      -o /out/ ./cmd/nodereboot-detector ./cmd/nodereboot-controller

# nsenter (util-linux) and the libraries it links besides glibc
# (libselinux.so.1, libpcre2-8.so.0 on Debian 12), at their real paths, for a
# distroless image of the same Debian release (same glibc).
FROM ${DEBIAN_IMAGE} AS nsenter
RUN set -eu; \
    mkdir -p /out/usr/bin; \
    cp /usr/bin/nsenter /out/usr/bin/nsenter; \
    for lib in $(ldd /usr/bin/nsenter | awk '$3 ~ /^\// { print $3 }'); do \
      case "${lib##*/}" in libc.so.*) continue ;; esac; \
      dir="$(dirname "$(readlink -f "$lib")")"; \
      mkdir -p "/out$dir"; \
      cp -L "$lib" "/out$dir/${lib##*/}"; \
    done; \
    find /out -type f

FROM ${RUNTIME_IMAGE}
ARG VERSION=dev
LABEL org.opencontainers.image.title="nodereboot" \
      org.opencontainers.image.description="Safe, event-driven node reboots for Kubernetes: nodereboot-detector and nodereboot-controller" \
      org.opencontainers.image.url="https://github.com/nodereboot/nodereboot" \
      org.opencontainers.image.source="https://github.com/nodereboot/nodereboot" \
      org.opencontainers.image.documentation="https://github.com/nodereboot/nodereboot/blob/main/docs/install.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/base-debian12:nonroot"
COPY --from=nsenter /out/ /
COPY --from=build /out/nodereboot-detector /out/nodereboot-controller /usr/local/bin/
ENV PATH=/usr/local/bin:/usr/bin:/bin
# The distroless "nonroot" user. The controller runs as it; the detector's
# manifest runs it as root (uid 0), which every reboot method needs.
USER 65532:65532

# syntax=docker/dockerfile:1
#
# Image of the collector. Build from the repository root (the module
# needs ../shared, and ../testkit/go.mod for its module graph):
#
#   docker build -f deploy/collector.Dockerfile -t tickwire/collector \
#       --build-arg VERSION="$(git describe --tags --always --dirty)" .
#
# VERSION is what `collector version` prints and tickwire_build_info exports
# (the image has no .git to ask; without it, "devel").
#
# The build ignores go.work (GOWORK=off): the module's replace directive finds
# ../shared. The final image holds one static binary and runs as nonroot.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS TARGETARCH
ARG VERSION=""
ENV GOWORK=off CGO_ENABLED=0 GOFLAGS=-trimpath
WORKDIR /src

# Dependencies first: a source change does not download them again.
COPY shared/go.mod shared/go.sum shared/
COPY collector/go.mod collector/go.sum collector/
# Only the test kit's go.mod: the module graph names it (tests use it).
COPY testkit/go.mod testkit/go.sum testkit/
RUN cd collector && go mod download

COPY shared/ shared/
COPY collector/ collector/
RUN --mount=type=cache,target=/root/.cache/go-build \
    cd collector && GOOS=$TARGETOS GOARCH=$TARGETARCH go build \
      -ldflags="-s -w -X github.com/tickwire/tickwire/shared/buildinfo.version=$VERSION" -o /out/collector .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/collector /usr/local/bin/collector
USER nonroot:nonroot
EXPOSE 9101
ENTRYPOINT ["/usr/local/bin/collector"]

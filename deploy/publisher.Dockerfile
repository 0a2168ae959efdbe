# syntax=docker/dockerfile:1
#
# Image of a publisher replica. Build from the repository root (the module
# needs ../shared, and ../testkit/go.mod for its module graph):
#
#   docker build -f deploy/publisher.Dockerfile -t tickwire/publisher \
#       --build-arg VERSION="$(git describe --tags --always --dirty)" .
#
# VERSION is what `publisher version` prints and tickwire_build_info exports
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
COPY publisher/go.mod publisher/go.sum publisher/
# Only the test kit's go.mod: the module graph names it (tests use it).
COPY testkit/go.mod testkit/go.sum testkit/
RUN cd publisher && go mod download

COPY shared/ shared/
COPY publisher/ publisher/
RUN --mount=type=cache,target=/root/.cache/go-build \
    cd publisher && GOOS=$TARGETOS GOARCH=$TARGETARCH go build \
      -ldflags="-s -w -X github.com/tickwire/tickwire/shared/buildinfo.version=$VERSION" -o /out/publisher .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/publisher /usr/local/bin/publisher
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/publisher"]
CMD ["serve"]

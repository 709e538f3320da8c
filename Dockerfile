# Container image of the FaceID exporter: a static binary on a distroless base,
# running as a non-root user with no shell. Build with BuildKit:
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t faceid-exporter:0.1.0 .

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG BRANCH=unknown
ARG CREATED=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH:-amd64} \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w \
        -X github.com/prometheus/common/version.Version=${VERSION} \
        -X github.com/prometheus/common/version.Revision=${REVISION} \
        -X github.com/prometheus/common/version.Branch=${BRANCH} \
        -X github.com/prometheus/common/version.BuildUser=docker \
        -X github.com/prometheus/common/version.BuildDate=${CREATED}" \
      -o /out/exporter ./cmd/exporter

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="faceid-exporter" \
      org.opencontainers.image.description="Prometheus and OpenTelemetry exporter for Tencent Cloud FaceID verification results read from NATS" \
      org.opencontainers.image.source="https://github.com/faceid-observability/faceid-exporter" \
      org.opencontainers.image.url="https://github.com/faceid-observability/faceid-exporter" \
      org.opencontainers.image.documentation="https://github.com/faceid-observability/faceid-exporter/tree/main/docs" \
      org.opencontainers.image.vendor="faceid-observability" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /out/exporter /exporter
USER 65532:65532
EXPOSE 9479
ENTRYPOINT ["/exporter"]

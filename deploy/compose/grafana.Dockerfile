# Grafana with the FaceID verification datasource plugin, for
# deploy/compose/compose.yaml. The build context is grafana-plugin/: its
# build.sh builds the backend for the image's platform and lays out dist/.
ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS plugin
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    PLATFORMS="${TARGETOS:-linux}/${TARGETARCH:-amd64}" ./build.sh

FROM grafana/grafana-oss:12.0.0
COPY --from=plugin /src/dist /var/lib/grafana/plugins/faceid-verification-datasource
# The plugin is not signed.
ENV GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=faceid-verification-datasource

# Grafana with the FaceID verification datasource plugin, for
# deploy/compose/compose.yaml. The build context is grafana-plugin/.
# Three stages, each in an image that has its tools: the frontend with Node
# (./build.sh frontend: npm ci, webpack), the backend with Go for the one
# platform of the image (mage build:linux or build:linuxARM64), then Grafana
# at the version the plugin's @grafana packages are built for
# (grafana-plugin/package.json). Untested here: see deploy/compose/README.md.
ARG NODE_VERSION=22
ARG GO_VERSION=1.26
ARG GRAFANA_VERSION=12.4.10

FROM --platform=$BUILDPLATFORM node:${NODE_VERSION} AS frontend
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY . .
RUN ./build.sh frontend

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS backend
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY . .
COPY --from=frontend /src/dist ./dist
# One platform, the image's: the SDK's mage targets build:linux (amd64) and
# build:linuxARM64; ./build.sh backend would build all six.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    case "${TARGETOS:-linux}/${TARGETARCH:-amd64}" in \
      linux/amd64) target=build:linux ;; \
      linux/arm64) target=build:linuxARM64 ;; \
      *) echo "grafana.Dockerfile: no plugin build for ${TARGETOS}/${TARGETARCH}" >&2; exit 1 ;; \
    esac && \
    go run github.com/magefile/mage -v "$target" && \
    ls dist/gpx_faceid_linux_*

FROM grafana/grafana-oss:${GRAFANA_VERSION}
COPY --from=backend /src/dist /var/lib/grafana/plugins/faceid-verification-datasource
# The plugin is not signed.
ENV GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=faceid-verification-datasource

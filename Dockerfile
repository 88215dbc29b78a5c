# syntax=docker/dockerfile:1
# The authgate images: one build stage compiles both commands, and two final stages hold one static
# binary each on distroless (no shell, no package manager), run as uid/gid 65532.
#
#   docker build --target webhook  -t ghcr.io/authgate/authgate-webhook:0.1.0 .
#   docker build --target operator -t ghcr.io/authgate/authgate-operator:0.1.0 .
#
# `make image` and `make image-push` wrap these; docs/images.md describes the images and
# hack/image/image_test.go checks this file (and runs its go build commands) without a Docker engine.

# The build stage runs on the build machine's platform and cross-compiles for the target, so
# `docker buildx build --platform linux/amd64,linux/arm64` needs no emulation. Its minor version
# follows go.mod's go line (the golang images set GOTOOLCHAIN=local).
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS TARGETARCH
WORKDIR /src
# Modules first, from go.mod and go.sum alone, so that editing code does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
# The rest of the context: go.mod, go.sum, api/, cmd/ and internal/ (see .dockerignore).
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -buildid=" -o /out/webhook ./cmd/webhook
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -buildid=" -o /out/operator ./cmd/operator

# The data plane: answers ingress auth checks, serves the login page.
FROM gcr.io/distroless/static-debian12:nonroot AS webhook
ARG VERSION=dev
LABEL org.opencontainers.image.source="https://github.com/authgate/authgate" \
      org.opencontainers.image.title="authgate-webhook" \
      org.opencontainers.image.description="authgate webhook: external authentication for Kubernetes ingress (ingress-nginx auth-url, Traefik forwardAuth, Envoy ext_authz)" \
      org.opencontainers.image.version="$VERSION"
COPY --from=build /out/webhook /webhook
USER 65532:65532
ENTRYPOINT ["/webhook"]

# The control plane: reconciles AuthPolicy objects, signing keys and annotated Ingresses.
FROM gcr.io/distroless/static-debian12:nonroot AS operator
ARG VERSION=dev
LABEL org.opencontainers.image.source="https://github.com/authgate/authgate" \
      org.opencontainers.image.title="authgate-operator" \
      org.opencontainers.image.description="authgate operator: reconciles AuthPolicy objects, signing keys and annotated Ingresses" \
      org.opencontainers.image.version="$VERSION"
COPY --from=build /out/operator /operator
USER 65532:65532
ENTRYPOINT ["/operator"]

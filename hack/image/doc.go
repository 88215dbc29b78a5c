// Package image holds no code, only a test of the container images: no Docker engine runs in this
// repository's CI, so image_test.go checks what can be checked without one.
//
// It reads the Dockerfile at the repository root (with a small line-based parser of its own) and
// checks that the webhook and operator stages start from distroless static:nonroot, run as
// 65532:65532 and start the binary the build stage compiled with CGO_ENABLED=0 and -trimpath from
// a golang image of go.mod's minor version. Then it runs the Dockerfile's own go build commands
// (taken from its text) for linux on this machine's architecture, checks with debug/elf that both
// binaries are statically linked and runs each with --help. Last, it checks that .dockerignore
// keeps out of the build context nothing that cmd/webhook and cmd/operator compile or embed.
//
// docs/images.md describes the images; `make image` builds them.
package image

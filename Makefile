# authgate: `make run` starts the webhook standalone (arrives with the data-plane issue), `make test`
# runs every test with real parts. `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
GO ?= go
CONTROLLER_GEN := $(GO) tool controller-gen
STATICCHECK := $(GO) tool staticcheck
FUZZTIME ?= 30s
TEST_FLAGS ?= -race
# Images (make image, make image-push): docker or podman; the tag defaults to the chart's appVersion.
CONTAINER_TOOL ?= docker
IMAGE_REGISTRY ?= ghcr.io/authgate
IMAGE_TAG ?= $(shell awk '$$1 == "appVersion:" { gsub(/"/, "", $$2); print $$2 }' charts/authgate/Chart.yaml 2>/dev/null)
PLATFORMS ?=
IMAGES := webhook operator

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: run
run: ## The webhook standalone on config/samples: memory store, demo users, http://localhost:8080.
	@echo "authgate: standalone webhook on config/samples (memory store) at http://localhost:8080"
	@echo "  login page:  http://localhost:8080/auth/login?policy=default/shop"
	@echo "  demo users (passwords are public, see config/samples/secret_demo-users.yaml):"
	@echo "    admin@example.com   admin-demo-password   (admin, editor)"
	@echo "    editor@example.com  editor-demo-password  (editor)"
	@echo "    viewer@example.com  viewer-demo-password  (viewer)"
	$(GO) run ./cmd/webhook --manifests config/samples --http-addr localhost:8080 --metrics-addr localhost:9090 --log-development

.PHONY: build
build: ## Compile every package (and the commands under cmd/ into bin/).
	$(GO) build ./...
	@if compgen -G 'cmd/*/main.go' >/dev/null; then $(GO) build -trimpath -o bin/ ./cmd/...; fi

.PHONY: image
image: ## Build the webhook and operator images, tagged with the chart's appVersion (docs/images.md).
	@test -n "$(IMAGE_TAG)" || { echo "IMAGE_TAG is empty (no appVersion in charts/authgate/Chart.yaml?)" >&2; exit 1; }
	for name in $(IMAGES); do \
		$(CONTAINER_TOOL) build --target "$$name" --build-arg VERSION=$(IMAGE_TAG) -t $(IMAGE_REGISTRY)/authgate-$$name:$(IMAGE_TAG) . ; \
	done

.PHONY: image-push
image-push: $(if $(PLATFORMS),,image) ## Push both images; with PLATFORMS=linux/amd64,linux/arm64, build and push them multi-arch (buildx).
	@test -n "$(IMAGE_TAG)" || { echo "IMAGE_TAG is empty (no appVersion in charts/authgate/Chart.yaml?)" >&2; exit 1; }
	for name in $(IMAGES); do \
		if [ -n "$(PLATFORMS)" ]; then \
			$(CONTAINER_TOOL) buildx build --platform "$(PLATFORMS)" --target "$$name" --build-arg VERSION=$(IMAGE_TAG) -t $(IMAGE_REGISTRY)/authgate-$$name:$(IMAGE_TAG) --push . ; \
		else \
			$(CONTAINER_TOOL) push $(IMAGE_REGISTRY)/authgate-$$name:$(IMAGE_TAG); \
		fi; \
	done

.PHONY: generate
generate: ## Write zz_generated.deepcopy.go.
	$(CONTROLLER_GEN) object paths=./api/...

.PHONY: manifests
manifests: ## Write the CRDs (config/crd/bases), RBAC from markers (config/rbac), the chart's copies of both and docs/policy-reference.md.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=authgate-operator paths=./internal/controller/... paths=./internal/operator/... output:rbac:artifacts:config=config/rbac/operator
	$(CONTROLLER_GEN) rbac:roleName=authgate-webhook paths=./internal/source/... output:rbac:artifacts:config=config/rbac/webhook
	$(GO) run ./hack/chartgen -crds config/crd/bases -rbac config/rbac -out charts/authgate/templates
	$(GO) run ./hack/crddoc -crd config/crd/bases/authgate.dev_authpolicies.yaml -header hack/crddoc/header.md -out docs/policy-reference.md

.PHONY: verify
verify: ## Fail when generated files are stale, code is unformatted, vet fails or go.mod is untidy.
	hack/verify.sh

.PHONY: lint
lint: ## go vet and staticcheck.
	$(GO) vet ./...
	$(STATICCHECK) ./...

.PHONY: deps
deps: ## Install the Debian packages the tests need (as root), or name them.
	hack/deps.sh

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd from Go modules (once) and print their directory.
	@hack/envtest.sh

.PHONY: test
test: deps ## Run every test (real kube-apiserver, Redis, nginx, Chromium) and the 1000-policy benchmark once.
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" $(GO) test -count=1 $(TEST_FLAGS) ./...
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" $(GO) test -count=1 -run '^$$' -bench ThousandPoliciesReady -benchtime 1x ./internal/controller/

.PHONY: bench
bench: deps ## Measure checks against a no-op baseline, run the Go benchmarks, write docs/benchmarks.md (about 8 minutes).
	$(GO) build -o bin/webhook ./cmd/webhook
	$(GO) build -o bin/noop ./hack/bench/noop
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" $(GO) run ./hack/bench -webhook bin/webhook -noop bin/noop

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 30s).
	hack/fuzz.sh $(FUZZTIME)

.PHONY: clean
clean: ## Remove built binaries (bin/k8s included, which takes minutes to rebuild).
	rm -rf bin

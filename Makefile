# nodereboot — see README.md. Two commands matter on a fresh machine:
#   make demo   a rollout on a local control plane, live in the terminal
#   make test   everything CI runs
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO       ?= go
BIN      := $(CURDIR)/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/nodereboot/nodereboot/pkg/version.Version=$(VERSION)
IMAGE    ?= ghcr.io/nodereboot/nodereboot:$(VERSION)
IMAGE_DIR ?= $(CURDIR)/_output/image
# The sandbox image the real node's containerd runs (built, never pulled).
PAUSE_IMAGE ?= localhost/nodereboot/pause:1
IMAGE_TOOLS_STAMP := $(BIN)/.image-tools

# Kubernetes version of the local control plane's binaries (hack/tools/go.mod).
KUBE_VERSION   := v1.37.2
KUBE_MINOR     := 37
TOOLS_DIR      := hack/tools
TOOLS_LDFLAGS  := -s -w \
  -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
  -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=$(KUBE_MINOR) \
  -X k8s.io/component-base/version.gitTreeState=clean \
  -X k8s.io/component-base/version.buildDate=2026-11-25T00:00:00Z \
  -X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_VERSION) \
  -X k8s.io/client-go/pkg/version.gitMajor=1 \
  -X k8s.io/client-go/pkg/version.gitMinor=$(KUBE_MINOR)
TOOLS_STAMP    := $(BIN)/.tools-$(KUBE_VERSION)
NODE_TOOLS_STAMP := $(BIN)/node/.stamp
# The VM's Debian root filesystem, cached under a name that changes with
# the script that builds it.
NODE_RESULTS  ?= $(CURDIR)/_output/realnode-results.json
VM_BASE        = $(CURDIR)/_output/vm/base-$(shell sha256sum hack/vm/base.sh | cut -c1-12)
CONTAINERD_VERSION := v2.4.2
RUNC_VERSION   := 1.5.3
HELM_VERSION   := v4.3.1
HELM_STAMP     := $(BIN)/.helm-$(HELM_VERSION)
LINT_STAMP     := $(BIN)/.staticcheck

E2E_TIMEOUT  ?= 30m
UNIT_TIMEOUT ?= 10m
NODES        ?= 3

PHONY_NODE := node-tools test-node test-node-deps
.PHONY: $(PHONY_NODE) build test test-unit test-e2e test-faults test-deps lint lint-chart tools helm cluster demo bench image docker-image clean

## build: the two binaries, bin/nodereboot-detector and bin/nodereboot-controller
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## tools: pinned etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, kubectl in bin/
tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): $(TOOLS_DIR)/go.mod $(TOOLS_DIR)/go.sum $(TOOLS_DIR)/cmd/kubectl/main.go
	@mkdir -p $(BIN)
	@echo ">> building the local control plane ($(KUBE_VERSION)); about 8 minutes on 2 cores from a cold cache"
	cd $(TOOLS_DIR) && $(GO) build -trimpath -ldflags '$(TOOLS_LDFLAGS)' -o $(BIN)/ \
	  k8s.io/kubernetes/cmd/kube-apiserver \
	  k8s.io/kubernetes/cmd/kube-controller-manager \
	  k8s.io/kubernetes/cmd/kube-scheduler \
	  sigs.k8s.io/kwok/cmd/kwok \
	  ./cmd/kubectl
	cd $(TOOLS_DIR) && $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/etcd go.etcd.io/etcd/server/v3
	@touch $@

## node-tools: the real node's binaries in bin/node/ (make test-node):
## kubelet from hack/node (the control plane's Kubernetes pin), containerd,
## its shim, ctr, runc and the CNI plugins from hack/runtime
node-tools: $(NODE_TOOLS_STAMP)

$(NODE_TOOLS_STAMP): hack/node/go.mod hack/node/go.sum hack/runtime/go.mod hack/runtime/go.sum
	@mkdir -p $(BIN)/node
	@echo ">> building the real node's kubelet, containerd, runc, CNI plugins; about 15 minutes on 2 cores from a cold cache"
	cd hack/node && CGO_ENABLED=0 nice -n 10 $(GO) build -trimpath -ldflags '$(TOOLS_LDFLAGS)' -o $(BIN)/node/ k8s.io/kubernetes/cmd/kubelet
	cd hack/runtime && CGO_ENABLED=0 nice -n 10 $(GO) build -trimpath \
	  -ldflags '-s -w -X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_VERSION)' -o $(BIN)/node/ \
	  github.com/containerd/containerd/v2/cmd/containerd \
	  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
	  github.com/containerd/containerd/v2/cmd/ctr \
	  github.com/containernetworking/plugins/plugins/main/bridge \
	  github.com/containernetworking/plugins/plugins/main/loopback \
	  github.com/containernetworking/plugins/plugins/ipam/host-local
	cd hack/runtime && CGO_ENABLED=1 nice -n 10 $(GO) build -trimpath -tags seccomp \
	  -ldflags '-s -w -X main.version=$(RUNC_VERSION)' -o $(BIN)/node/runc github.com/opencontainers/runc
	@touch $@

## test-node: a real node: a kubelet in a qemu VM (software emulation) that
## really reboots, nodereboot installed from deploy/, one reboot per method
## (e2e/realnode, docs/reliability.md "A real node"); not part of make test
test-node: test-node-deps tools build image node-tools
	hack/vm/base.sh $(VM_BASE)
	NODEREBOOT_TEST_NODE=1 NODEREBOOT_VM_BASE=$(VM_BASE) NODEREBOOT_NODE_RESULTS=$(NODE_RESULTS) \
	  $(GO) test -timeout 120m -count=1 -v ./e2e/realnode/

## test-node-deps: Debian packages the real node needs: qemu (the VM),
## mmdebstrap (its root filesystem), busybox-static (a shell image),
## libseccomp-dev (runc's seccomp support)
test-node-deps:
	@missing=""; \
	command -v qemu-system-x86_64 >/dev/null || missing="$$missing qemu-system-x86"; \
	command -v mmdebstrap >/dev/null || missing="$$missing mmdebstrap"; \
	[ -x /bin/busybox ] || missing="$$missing busybox-static"; \
	[ -e /usr/include/seccomp.h ] || missing="$$missing libseccomp-dev pkg-config"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo ">> installing$$missing for the real node"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo ">> missing$$missing: install them (Debian packages)"; exit 1; fi; \
	fi

## helm: the pinned Helm CLI in bin/helm (hack/helm/go.mod), for the chart tests
helm: $(HELM_STAMP)

$(HELM_STAMP): hack/helm/go.mod hack/helm/go.sum
	@mkdir -p $(BIN)
	cd hack/helm && $(GO) build -trimpath -ldflags '-s -w -X helm.sh/helm/v4/internal/version.version=$(HELM_VERSION)' -o $(BIN)/helm helm.sh/helm/v4/cmd/helm
	@touch $@

lint-chart: helm
	$(BIN)/helm lint --strict deploy/helm/nodereboot

$(LINT_STAMP): hack/lint/go.mod hack/lint/go.sum
	@mkdir -p $(BIN)
	cd hack/lint && $(GO) build -o $(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck
	@touch $@

## lint: gofmt, go vet, staticcheck (pinned in hack/lint/go.mod)
lint: $(LINT_STAMP)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...

## test-deps: Debian packages some tests need: dbus-daemon (the dbus reboot
## method) and prometheus (the alert gate against a real Prometheus)
test-deps:
	@missing=""; \
	command -v dbus-daemon >/dev/null || missing="$$missing dbus"; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo ">> installing$$missing for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo ">> missing$$missing: the tests that need them will be skipped"; fi; \
	fi

## test-unit: unit tests (fake clientsets, no cluster)
test-unit:
	$(GO) test -timeout $(UNIT_TIMEOUT) ./pkg/... ./cmd/...

## test-e2e: tests against the real local control plane
test-e2e: tools helm build test-deps
	$(GO) test -timeout $(E2E_TIMEOUT) -p 2 ./e2e/... ./bench/...

## test-faults: the whole fault-injection suite, several seeded runs of every
## fault (docs/reliability.md; make test runs a fast subset)
test-faults: tools build
	NODEREBOOT_FAULTS=full $(GO) test -timeout 90m -v ./e2e/faults/

## test: everything CI runs
test: lint test-unit test-e2e

## cluster: a local control plane with NODES simulated nodes; Ctrl-C stops it
cluster: tools
	$(GO) run ./e2e/cmd/local-cluster --nodes $(NODES) --dir $(CURDIR)/_output/cluster

## demo: the main job — a safe rolling reboot, live in the terminal
## (DEMO_FLAGS=--aks: on AKS-like node pools; `go run ./e2e/cmd/demo -h` lists the flags)
demo: tools build
	$(GO) run ./e2e/cmd/demo $(DEMO_FLAGS)

## bench: benchmarks on the local control plane (figures in docs/benchmarks.md)
bench: tools build
	$(GO) run ./bench

## image: the container image as an OCI archive, without a container engine:
## $(IMAGE_DIR)/nodereboot.oci.tar (the Dockerfile's layout, from this
## Debian 12 machine's nsenter and glibc; checked by e2e/deploy TestImage)
## and $(IMAGE_DIR)/pause.oci.tar (the sandbox image of e2e/realnode)
image: $(IMAGE_TOOLS_STAMP)
	@mkdir -p $(IMAGE_DIR)/bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(IMAGE_DIR)/bin/ ./cmd/nodereboot-detector ./cmd/nodereboot-controller
	cp $(BIN)/pause $(IMAGE_DIR)/bin/pause
	hack/image/rootfs.sh $(IMAGE_DIR)/bin $(IMAGE_DIR)/rootfs
	$(BIN)/image-build --out $(IMAGE_DIR)/nodereboot.oci.tar --ref $(IMAGE) \
	  --layer $(IMAGE_DIR)/rootfs/base --layer $(IMAGE_DIR)/rootfs/nsenter --layer $(IMAGE_DIR)/rootfs/bin \
	  --user 65532:65532 --env PATH=/usr/local/bin:/usr/bin:/bin \
	  --label org.opencontainers.image.title=nodereboot \
	  --label 'org.opencontainers.image.description=Safe, event-driven node reboots for Kubernetes: nodereboot-detector and nodereboot-controller' \
	  --label org.opencontainers.image.url=https://github.com/nodereboot/nodereboot \
	  --label org.opencontainers.image.source=https://github.com/nodereboot/nodereboot \
	  --label org.opencontainers.image.documentation=https://github.com/nodereboot/nodereboot/blob/main/docs/install.md \
	  --label org.opencontainers.image.version=$(VERSION) \
	  --label org.opencontainers.image.licenses=Apache-2.0 \
	  --label org.opencontainers.image.base.name=gcr.io/distroless/base-debian12:nonroot
	$(BIN)/image-build --out $(IMAGE_DIR)/pause.oci.tar --ref $(PAUSE_IMAGE) \
	  --layer $(IMAGE_DIR)/rootfs/pause --user 65535:65535 --entrypoint /pause
	@echo ">> $(IMAGE) in $(IMAGE_DIR)/nodereboot.oci.tar, $(PAUSE_IMAGE) in $(IMAGE_DIR)/pause.oci.tar"

$(IMAGE_TOOLS_STAMP): hack/image/go.mod hack/image/go.sum hack/image/main.go hack/image/pause/main.go
	@mkdir -p $(BIN)
	cd hack/image && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/image-build . \
	  && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/pause ./pause
	@touch $@

## docker-image: the same image with a Docker engine (docker build)
docker-image:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

clean:
	rm -rf $(BIN) _output

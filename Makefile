# rkt build. `make` builds the CLI, the stage1 images, the guest kernel and
# the example images; `make check` runs every test. See README.md.

VERSION ?= 0.1.0
GO ?= go
GOBUILD = CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X rkt.dev/rkt/internal/version.Version=$(VERSION)"
ACTOOL = build/tools/actool

.PHONY: all demo deps rkt stage1 images kernel check bench clean FORCE

all: rkt kernel stage1 images

rkt: build/bin/rkt
stage1: build/stage1-fly.aci build/stage1-kvm.aci build/stage1-nspawn.aci

# Go's build cache decides what is stale; FORCE makes make always ask it.
build/bin/rkt: FORCE
	$(GOBUILD) -o $@ ./cmd/rkt

build/bin/stage1-%: FORCE
	$(GOBUILD) -o $@ ./stage1-$*

$(ACTOOL):
	$(GO) build -o $@ github.com/appc/spec/actool

build/stage1-fly.aci: build/bin/stage1-fly stage1-fly/manifest.in scripts/mkstage1 $(ACTOOL)
	scripts/mkstage1 fly build/bin/stage1-fly $@ $(VERSION)

build/stage1-nspawn.aci: build/bin/stage1-nspawn stage1-nspawn/manifest.in scripts/mkstage1 $(ACTOOL)
	scripts/mkstage1 nspawn build/bin/stage1-nspawn $@ $(VERSION)

# stage1-kvm carries the guest kernel and an initramfs whose /init is the
# guest agent; QEMU and virtiofsd come from the host.
build/bin/guest-agent: FORCE
	$(GOBUILD) -o $@ ./guest-agent

build/kvm/initrd.img: build/bin/guest-agent build/bin/mkinitramfs
	@mkdir -p $(@D)
	build/bin/mkinitramfs -init build/bin/guest-agent -o $@

build/stage1-kvm.aci: build/bin/stage1-kvm build/kernel/vmlinux build/kvm/initrd.img stage1-kvm/manifest.in scripts/mkstage1 $(ACTOOL)
	scripts/mkstage1 kvm build/bin/stage1-kvm $@ $(VERSION) build/kernel/vmlinux:vmlinux build/kvm/initrd.img:initrd.img

# The guest kernel: built from Debian's linux-source-6.1 on first use (about
# 11-15 minutes on 2 cores) and cached in /var/cache/rkt/kernel by a hash of
# its inputs, so later builds, and CI on the same machine, only copy it.
kernel: build/kernel/vmlinux
build/kernel/vmlinux: kernel/build.sh kernel/config.fragment
	kernel/build.sh build/kernel

build/bin/mkinitramfs: FORCE
	$(GOBUILD) -o $@ ./kernel/cmd/mkinitramfs

# Benchmarks (tests/bench): each prints "BENCH <name> <b> <a> ratio=<b/a>".
build/bin/floorinit: FORCE
	$(GOBUILD) -o $@ ./tests/bench/floorinit

build/bench/floor-initrd.img: build/bin/floorinit build/bin/mkinitramfs
	@mkdir -p $(@D)
	build/bin/mkinitramfs -init build/bin/floorinit -o $@

build/bin/vsockguest: FORCE
	$(GOBUILD) -o $@ ./tests/vsockguest

build/bench/vsockguest-initrd.img: build/bin/vsockguest build/bin/mkinitramfs
	@mkdir -p $(@D)
	build/bin/mkinitramfs -init build/bin/vsockguest -o $@

bench: all build/bench/floor-initrd.img build/bench/vsockguest-initrd.img
	$(GO) run ./tests/bench/kvmboot
	$(GO) run ./tests/bench/vsockbench
	$(GO) run ./tests/bench/nspawn
	$(GO) run ./tests/bench/dockerpull -rkt build/bin/rkt

# Example images for the functional tests; images/build.sh builds both at once.
INSPECTOR_SRCS := $(filter-out %_test.go,$(wildcard tests/inspector/*.go internal/mountinfo/*.go))
build/images/busybox.aci build/images/inspector.aci &: images/build.sh images/busybox/manifest.in images/inspector/manifest.in $(INSPECTOR_SRCS) $(ACTOOL)
	images/build.sh build/images $(VERSION)

images: build/images/busybox.aci build/images/inspector.aci

# The README's first command: install, build everything, boot a pod in a VM.
demo: deps all
	@echo "host kernel: $$(uname -r)"
	build/bin/rkt run --insecure-options=image --net=none build/images/inspector.aci -- \
		--print-msg="Hello from rkt: this pod runs in a VM" --print-kernel

# Tests: unit tests of every package, then the functional tests in tests/,
# which drive the built binaries and need root.
check: deps all
	scripts/run-tests

deps:
	scripts/install-deps

clean:
	rm -rf build

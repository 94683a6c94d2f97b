# The two commands a newcomer needs (see README.md):
#   make demo   - build the toolchain if needed, start the local host cluster, apply the example tenants
#   make test   - the whole test suite, integration tests included (this is what CI runs; as root it
#                 installs the node's Debian packages first)
PYTHON ?= python3
VENV   ?= .venv
VCM    := $(VENV)/bin/vcm
PY     := $(VENV)/bin/python
# pytest-xdist workers of `make test` (0: one process, serially); the tests with a node run on one of them
PYTEST_WORKERS ?= 2
ifeq ($(PYTEST_WORKERS),0)
PYTEST_PARALLEL :=
else
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder
endif

.PHONY: venv toolchain object-store conformance upgrade-from node-packages test-deps test-toolchain test-prereqs test demo demo-down clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

venv: $(VENV)/.installed

toolchain: venv
	$(VCM) toolchain ensure
	$(VCM) toolchain status

# SeaweedFS, the S3-compatible object store of the shared-backend (--shard) tests: built on demand, not for demo
object-store: toolchain
	$(VCM) toolchain ensure --object-store

# cyclonus, its policy engine and agnhost: the NetworkPolicy conformance tests (built before any node starts: the
# node writes the agnhost image when the binary is there)
conformance: toolchain
	$(VCM) toolchain ensure --conformance

# the vcluster syncer a control plane is upgraded from in the upgrade test on the node (built before
# any node starts: the node writes its image when the binary is there; with 0.36.1's build cache warm it compiles
# vcluster's own packages only)
upgrade-from: toolchain
	$(VCM) toolchain ensure --upgrade-from

# Debian packages of the local cluster's node (containerd, runc, CNI plugins, ...); needs root to install
node-packages:
	bash scripts/install-node-packages.sh

# what the tests need beyond Python (chromium for the usage page); after the node's packages (one apt at a time)
test-deps: node-packages
	.ci/install-test-deps

# everything the test suite builds, in one ensure (two Go builds at once from one queue, VCM_BUILD_JOBS)
test-toolchain: venv
	$(VCM) toolchain ensure --object-store --conformance --upgrade-from
	$(VCM) toolchain status --object-store --conformance --upgrade-from

# the Go builds and the Debian packages at once: a cold first run is mostly these
test-prereqs:
	$(MAKE) -j2 --no-print-directory test-toolchain test-deps

test: test-prereqs
	$(PY) -m pytest -ra -p no:cacheprovider $(PYTEST_PARALLEL) $(PYTEST_ARGS)

demo: toolchain node-packages
	$(VCM) local up --reuse
	eval "$$($(VCM) local env)" && $(VCM) platform apply --yes && \
	  $(VCM) apply examples/tenants --parallel 2 --yes && $(VCM) list

demo-down: venv
	$(VCM) local down

clean:
	rm -rf $(VENV) .pytest_cache

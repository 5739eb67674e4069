# The commands the README shows. Everything is idempotent.
.PHONY: up down test lint cluster-build cluster-start cluster-stop cluster-real-node bench versions screenshots

up:            ## bring everything up and print where to go
	tools/dev/up.sh

down:          ## stop everything `make up` started
	tools/dev/down.sh

test:          ## run every test (starts what they need)
	tools/dev/test.sh $(PYTEST_ARGS)

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

cluster-build: ## build (or reuse) helm, kwok and the control plane (SIMCLUSTER_REAL_NODE=1: CoreDNS too)
	tools/simcluster/build.sh

cluster-start: ## start (or reuse) the simulated cluster; SIMCLUSTER_REAL_NODE=1 adds the real node
	tools/simcluster/start.sh

cluster-stop:  ## stop it (data kept); the real node undoes its mounts, bridge and iptables rules
	tools/simcluster/stop.sh

cluster-real-node: ## install the real node's packages, then start the cluster with it
	SIMCLUSTER_REAL_NODE=1 tools/dev/bootstrap.sh
	SIMCLUSTER_REAL_NODE=1 tools/simcluster/start.sh

bench:         ## provisioning/teardown/API benchmark on the simulated cluster (N=20; 200 or 1000 by option)
	tools/dev/bench.sh $(BENCH_ARGS)

versions:      ## every pinned image next to the newest release of its line the project knows (tools/versions.yaml)
	.venv/bin/python -m tools.versions

screenshots:   ## the README's dashboard screenshots (docs/screenshots/*.png), from the browser tests
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots SIMCLUSTER_REAL_NODE=0 tools/dev/test.sh tests/dashboard/test_browser.py

# The commands the README shows. Everything is idempotent.
.PHONY: up down test lint cluster-build cluster-start cluster-stop cluster-real-node bench versions screenshots

up:            ## bring everything up and print where to go
	deploy/dev/up.sh

down:          ## stop everything `make up` started
	deploy/dev/down.sh

test:          ## run every test (starts what they need)
	deploy/dev/test.sh $(PYTEST_ARGS)

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

cluster-build: ## build (or reuse) helm, kwok and the control plane (SIMCLUSTER_REAL_NODE=1: CoreDNS too)
	deploy/simcluster/build.sh

cluster-start: ## start (or reuse) the simulated cluster; SIMCLUSTER_REAL_NODE=1 adds the real node
	deploy/simcluster/start.sh

cluster-stop:  ## stop it (data kept); the real node undoes its mounts, bridge and iptables rules
	deploy/simcluster/stop.sh

cluster-real-node: ## install the real node's packages, then start the cluster with it
	SIMCLUSTER_REAL_NODE=1 deploy/dev/bootstrap.sh
	SIMCLUSTER_REAL_NODE=1 deploy/simcluster/start.sh

bench:         ## provisioning/teardown/API benchmark on the simulated cluster (N=20; N=50 or 200 by option)
	deploy/dev/bench.sh $(BENCH_ARGS)

versions:      ## every pinned image next to the newest release of its line the project knows (tools/versions.yaml)
	.venv/bin/python -m tools.versions

screenshots:   ## the README's dashboard screenshots (docs/screenshots/*.png), from the browser tests
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots SIMCLUSTER_REAL_NODE=0 deploy/dev/test.sh tests/dashboard/test_browser.py

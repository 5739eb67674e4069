# The commands the README shows. Everything is idempotent.
.PHONY: up down test lint cluster-build cluster-start cluster-stop bench versions

up:            ## bring everything up and print where to go
	deploy/dev/up.sh

down:          ## stop everything `make up` started
	deploy/dev/down.sh

test:          ## run every test (starts what they need)
	deploy/dev/test.sh $(PYTEST_ARGS)

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

cluster-build: ## build (or reuse) helm, kwok and the control plane
	deploy/simcluster/build.sh

cluster-start:
	deploy/simcluster/start.sh

cluster-stop:
	deploy/simcluster/stop.sh

bench:         ## provisioning/teardown/API benchmark on the simulated cluster (N=20; N=50 or 200 by option)
	deploy/dev/bench.sh $(BENCH_ARGS)

versions:      ## every pinned image next to the newest release of its line the project knows (tools/versions.yaml)
	.venv/bin/python -m tools.versions

"""The benchmark harness behind `make bench` (see deploy/bench/README.md)."""

"""The benchmark: the orchestrator against raw helm on the simulated cluster (`python -m tools.bench`)."""

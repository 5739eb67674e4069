"""pytest plugins shared by the test suites (see tests/plugins/simcluster.py)."""

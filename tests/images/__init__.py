"""Tests of the images built without Docker or a registry (tools/simcluster/images): each stand-in
for a third-party image runs under its chart's own pod spec and must keep the official image's
contract."""

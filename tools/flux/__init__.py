"""Flux's helm-controller as a measured peer of the orchestrator and raw helm (see README.md here).

`peer.FluxPeer` runs Flux's source-controller and helm-controller (built by build.sh) against a
cluster, serves the store charts from a Helm repository on loopback and creates stores as
HelmReleases; `python -m tools.flux` tries it alone.
"""

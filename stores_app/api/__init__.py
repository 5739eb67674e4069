"""The REST API (DRF): stores, their events, retry, credentials, and API tokens."""

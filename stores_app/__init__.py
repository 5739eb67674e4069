"""The store domain: models, services, Celery tasks, helm and Kubernetes gateways, views and API."""

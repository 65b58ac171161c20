"""The control plane: REST API, store, Celery producer and (later) the admin dashboard."""

__version__ = "0.1.0"

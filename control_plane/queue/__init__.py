"""The broker side of the control plane: Celery producer and the all-in-one Redis."""

"""The worker agent: a headless engine (Celery worker, Docker executor) plus a tray UI."""

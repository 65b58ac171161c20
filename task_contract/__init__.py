"""What the control plane and the agent must agree on: manifest, REST payloads, Celery message."""

"""The REST API: one router module per resource, errors mapped in one place."""

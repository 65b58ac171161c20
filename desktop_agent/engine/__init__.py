"""Headless agent engine: runs plugin containers and talks to the control plane."""

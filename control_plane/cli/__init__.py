"""`dts`: the terminal client for people (submit, status, wait, export, plugins)."""

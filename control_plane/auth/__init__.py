"""Who may call what: the admin token, the enrollment token and per-agent credentials."""

"""Plain domain logic behind the routes: submission, agent protocol, recovery."""

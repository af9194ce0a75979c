"""Haven's services: one package per domain, plus the shared kernel."""

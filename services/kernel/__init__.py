"""The shared kernel: settings, database, outbox/inbox, dead-letters, telemetry. No business rules."""

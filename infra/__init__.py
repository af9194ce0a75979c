"""Real infrastructure on a bare machine: Kafka, PostgreSQL, topics, migrations."""

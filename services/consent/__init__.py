"""Consent: the lifecycle of survivors' directives — granted, revoked, expired — and their history."""

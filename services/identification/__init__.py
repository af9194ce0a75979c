"""Identification: a survivor screened once, a pseudonymous id, needs assessed, erasure on request."""

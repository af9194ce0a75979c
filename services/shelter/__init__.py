"""Shelter: beds by unit type, placements that never double-book, check-in and check-out."""

"""Rejections that every layer and the gateway understand: a stable code, a message, the field at fault."""

from __future__ import annotations


class DomainError(Exception):
    """A command that the domain refuses. ``code`` is stable, ``message`` is for people.

    >>> DomainError("means_required", "an adult's screening needs at least one means", field="means").field
    'means'
    """

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

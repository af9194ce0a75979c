"""The error catalogue, ``docs/errors.md``, generated from the code: every refusal code a service raises
(``DomainError``) and every code the gateway answers with (``fail``), with its message and where it is raised.

Written by ``python -m infra.docs --write`` (``make asyncapi`` runs it); a unit test fails when the committed file
is stale. It reads the source with ``ast`` and imports nothing of the services or the gateway.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from strawberry.utils.str_converters import to_camel_case

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "errors.md"
SOURCES = {"services": "refused by a service: `command.refused` on `haven.outcomes`, and the mutation's `outcome`",
           "events": "refused by a service (contract rules)",
           "graphql/gateway": "answered by the gateway: `errors[].extensions.code`"}  # fmt: skip


@dataclass(frozen=True)
class Raised:
    code: str
    message: str
    field: str | None
    where: str


def constants() -> dict[str, str]:
    """Module-level string constants (``NOT_IN_CARE_TEAM = "not_in_care_team"``), for codes passed by name."""
    found = {}
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                    for target in node.targets:
                        if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                            found[target.id] = node.value.value
    return found


CONSTANTS: dict[str, str] = {}


def _text(node: ast.expr | None) -> str | None:
    """A literal string (or a constant's), or an f-string with its holes shown as ``{…}``."""
    if isinstance(node, ast.Name):
        return CONSTANTS.get(node.id)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{…}" for v in node.values)  # type: ignore[misc]
    return None


def raised_in(path: Path) -> list[Raised]:
    """Every ``DomainError("code", message, field=…)`` and ``fail("CODE", message)`` in one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        # A table of codes and their meanings: ``SOMETHING_CODES = {"CODE": "meaning", …}``.
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            if any(isinstance(t, ast.Name) and t.id.endswith("_CODES") for t in node.targets):
                for k, v in zip(node.value.keys, node.value.values, strict=True):
                    if (code := _text(k)) is not None:
                        found.append(Raised(code, _text(v) or "", None, str(path.relative_to(ROOT))))
            continue
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        # Where the code sits: DomainError(code, message), fail(code, message), the guard's Refusal(status, code,
        # message) and _error(id, code, message), GraphQLError(message, extensions={"code": code}).
        at = {"DomainError": 0, "fail": 0, "Refusal": 1, "_error": 1}.get(name)
        if name == "GraphQLError":
            extensions = next((k.value for k in node.keywords if k.arg == "extensions"), None)
            codes = [v for k, v in zip(getattr(extensions, "keys", []), getattr(extensions, "values", []), strict=True)
                     if _text(k) == "code"]  # fmt: skip
            code, message = (_text(codes[0]) if codes else None), _text(node.args[0])
        elif at is not None and len(node.args) > at:
            code = _text(node.args[at])
            message = _text(node.args[at + 1]) if len(node.args) > at + 1 else None
        else:
            continue
        if code is None or "{" in code:
            continue
        field = next((_text(k.value) for k in node.keywords if k.arg == "field"), None)
        found.append(Raised(code, message or "", field, str(path.relative_to(ROOT))))
    return found


def collected() -> dict[tuple[str, str], list[Raised]]:
    """Every code raised, by (folder, code): ``services`` and ``events`` refuse commands, the gateway answers."""
    CONSTANTS.update(constants())
    by_code: dict[tuple[str, str], list[Raised]] = defaultdict(list)
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for raised in raised_in(path):
                by_code[(folder, raised.code)].append(raised)
    return by_code


def refusal_codes() -> frozenset[str]:
    """Every code a service refuses a command with (``DomainError`` under services/ and in the contract)."""
    return frozenset(code for folder, code in collected() if folder in ("services", "events"))


def catalogue() -> str:
    by_code = collected()
    lines = [
        "# Error codes",
        "",
        "Generated from the code by `python -m infra.docs --write` (`make asyncapi`); do not edit by hand.",
        "Every refusal carries one of these codes, a message for people and, where there is one, the field at fault.",
    ]
    for folder, heading in SOURCES.items():
        codes = sorted(code for f, code in by_code if f == folder)
        if not codes:
            continue
        lines += [
            "",
            f"## {heading[0].upper()}{heading[1:]}",
            "",
            "| code | field | message | raised in |",
            "|---|---|---|---|",
        ]
        for code in codes:
            places = by_code[(folder, code)]
            # As the API spells them (directive.validUntil); a service's refusal reaches callers through it.
            fields = sorted({".".join(to_camel_case(f) for f in p.field.split(".")) for p in places if p.field})
            messages = sorted({p.message for p in places if p.message})
            where = sorted({p.where for p in places})
            lines.append(f"| `{code}` | {', '.join(f'`{f}`' for f in fields)} | {'; '.join(messages).replace('|', '/')}"
                         f" | {', '.join(f'`{w}`' for w in where)} |")  # fmt: skip
    return "\n".join(lines) + "\n"

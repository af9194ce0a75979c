"""The generated documents in ``docs/``: the error catalogue and the referral states, both from the code.

``python -m infra.docs --write`` (``make asyncapi`` runs it); a unit test fails when either is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from events.needs import Urgency
from events.referrals import FHIR_TASK, RESPONSE_TIME, SHARED_AT_MOST, ReferralStatus
from infra import errors_doc
from services.referrals.domain import BY_EITHER, BY_RECIPIENT, NEXT

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _who(status: ReferralStatus) -> str:
    if status is ReferralStatus.REQUESTED:
        return "the referrer (a care team member)"
    if status in BY_RECIPIENT:
        return "the recipient"
    if status in BY_EITHER:
        return "the referrer or the recipient"
    if status is ReferralStatus.CANCELLED:
        return "the referrer; Haven when consent is withdrawn"
    return "Haven, when the deadline passes"


def referrals() -> str:
    """The referral lifecycle, what each type shares at most, and how long a provider has to answer."""
    lines = [
        "# Referral states",
        "",
        "Generated from the code by `python -m infra.docs --write` (`make asyncapi`); do not edit by hand.",
        "",
        "| state | may become | moved by | FHIR Task status | businessStatus |",
        "|---|---|---|---|---|",
    ]
    for status in ReferralStatus:
        fhir, business = FHIR_TASK[status]
        after = ", ".join(f"`{s}`" for s in sorted(NEXT[status])) or "—"
        lines.append(f"| `{status}` | {after} | {_who(status)} | `{fhir}` | {f'`{business}`' if business else ''} |")
    lines += [
        "",
        "The HL7 SDOH Clinical Care IG's referral task status set leaves out `received`: `/fhir/Task` shows a",
        "received referral as `requested` with `businessStatus` `received`.",
        "",
        "## What each type of referral shares at most",
        "",
        "A referral shares what of these the survivor's consent permits the recipient and names the rest as",
        "withheld; it goes ahead either way, and the recipient may reject it with `insufficient_information`.",
        "",
        "| referral type | categories, at most |",
        "|---|---|",
    ]
    lines += [f"| `{t}` | {', '.join(f'`{c}`' for c in sorted(cats))} |" for t, cats in SHARED_AT_MOST.items()]
    lines += ["", "## How long a provider has to answer", "", "| urgency | response time |", "|---|---|"]
    lines += [f"| `{u}` | {RESPONSE_TIME[u]} |" for u in Urgency]
    return "\n".join(lines) + "\n"


GENERATED = {"errors.md": errors_doc.catalogue, "referrals.md": referrals}


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        DOCS.mkdir(exist_ok=True)
        for name, make in GENERATED.items():
            (DOCS / name).write_text(make())
            print(f"wrote {DOCS / name}")
    else:
        print(referrals(), end="")

"""The console's languages: gettext catalogs (Babel) read from ``locale/*/LC_MESSAGES/messages.po``, and the
plain-language words for Haven's codes. English is the source language; Spanish and French are complete (a unit
test fails when a message has no translation)."""

from __future__ import annotations

import contextvars
from datetime import datetime
from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

LOCALES = Path(__file__).with_name("locale")
LANGUAGES = {"en": "English", "es": "Español", "fr": "Français"}
"""What the console speaks, each named in itself (the language picker shows these)."""

CURRENT: contextvars.ContextVar[str] = contextvars.ContextVar("console_language", default="en")


def _(message: str) -> str:
    """Mark ``message`` for translation and translate it into the current language."""
    return translations(CURRENT.get()).gettext(message)


def N_(message: str) -> str:
    """Mark ``message`` for translation only (it is translated where it is shown)."""
    return message


@cache
def translations(language: str) -> NullTranslations:
    """The catalog of ``language``, compiled in memory from its .po file (English needs none)."""
    po = LOCALES / language / "LC_MESSAGES" / "messages.po"
    if language == "en" or not po.is_file():
        return NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def pick(requested: str | None, accept_language: str | None) -> str:
    """The user's choice if we speak it, else the first language of the browser's we speak, else English."""
    if requested in LANGUAGES:
        return requested
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return "en"


def when(moment: datetime | str | None) -> str:
    """A date and time as the current language writes it."""
    if moment is None:
        return ""
    at = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return format_datetime(at, format="medium", locale=Locale.parse(CURRENT.get()))


def number(value: int | float | None) -> str:
    """A number as the current language writes it (1,250 · 1.250 · 1 250)."""
    return "" if value is None else format_decimal(value, locale=Locale.parse(CURRENT.get()))


def time_left(deadline: datetime | str, now: datetime) -> str:
    """How long until ``deadline`` ("in 3 hours", "2 days ago"), in the current language."""
    at = datetime.fromisoformat(deadline) if isinstance(deadline, str) else deadline
    return format_timedelta(at - now, add_direction=True, locale=Locale.parse(CURRENT.get()))


LABELS = {
    # consent categories, in words a survivor understands
    "IDENTITY": N_("Who you are (name, date of birth, documents)"),
    "CONTACT": N_("How to reach you safely"),
    "LOCATION": N_("Where you are staying"),
    "NARRATIVE": N_("What happened to you"),
    "HEALTH": N_("Your health and care"),
    "IMMIGRATION": N_("Your immigration situation"),
    "LEGAL": N_("Your legal case"),
    "EMPLOYMENT": N_("Your work and training"),
    "CASE_STATUS": N_("Which services you are using, and how it is going"),
    "STATISTICS": N_("Age group, gender and nationality"),  # also a purpose: counted, never named
    # purposes
    "SERVICE_DELIVERY": N_("to give you a service"),
    "LEGAL_PROCEEDINGS": N_("for your legal case"),
    "LAW_ENFORCEMENT": N_("for a police investigation"),
    # referral states
    "REQUESTED": N_("Requested"),
    "RECEIVED": N_("Received"),
    "ACCEPTED": N_("Accepted"),
    "IN_PROGRESS": N_("In progress"),
    "ON_HOLD": N_("On hold"),
    "COMPLETED": N_("Completed"),
    "FAILED": N_("Failed"),
    "REJECTED": N_("Declined"),
    "DECLINED_BY_SURVIVOR": N_("Declined by the survivor"),
    "CANCELLED": N_("Cancelled"),
    "EXPIRED": N_("Expired"),
    "ENTERED_IN_ERROR": N_("Entered in error"),
    # urgency
    "EMERGENCY": N_("Emergency"),
    "URGENT": N_("Urgent"),
    "ROUTINE": N_("Routine"),
    # services
    "EMERGENCY_SHELTER": N_("Emergency shelter"),
    "TRANSITIONAL_HOUSING": N_("Transitional housing"),
    "MEDICAL": N_("Medical care"),
    "MENTAL_HEALTH": N_("Mental health"),
    "SEXUAL_REPRODUCTIVE_HEALTH": N_("Sexual and reproductive health"),
    "PSYCHOSOCIAL": N_("Psychosocial support"),
    "LEGAL_AID": N_("Legal aid"),
    "IMMIGRATION_LEGAL": N_("Immigration advice"),
    "CHILD_PROTECTION": N_("Child protection"),
    "INTERPRETATION": N_("Interpretation"),
    # shelter units
    "ADULT_WOMEN": N_("Adult women"),
    "ADULT_MEN": N_("Adult men"),
    "FAMILIES": N_("Families"),
    "MINORS": N_("Minors"),
    "ACCESSIBLE": N_("Accessible"),
    # why a provider declines
    "NO_CAPACITY": N_("No capacity"),
    "INELIGIBLE": N_("Not eligible"),
    "INSUFFICIENT_INFORMATION": N_("Not enough information"),
    "UNREACHABLE": N_("Could not reach the survivor"),
    "OTHER": N_("Other"),
    # why a referral was cancelled
    "BY_REFERRER": N_("Withdrawn by the referrer"),
    "CONSENT_WITHDRAWN": N_("The survivor withdrew consent"),
    # the screening: Palermo Protocol acts, means and purposes, and where it happened
    "RECRUITMENT": N_("Recruitment"),
    "TRANSPORT": N_("Transport"),
    "TRANSFER": N_("Transfer"),
    "HARBOURING": N_("Harbouring"),
    "RECEIPT": N_("Receipt"),
    "FORCE": N_("Force"),
    "THREAT": N_("Threats"),
    "ABDUCTION": N_("Abduction"),
    "FRAUD": N_("Fraud"),
    "DECEPTION": N_("Deception"),
    "COERCION": N_("Coercion"),
    "DEBT_BONDAGE": N_("Debt bondage"),
    "DOCUMENT_CONFISCATION": N_("Documents taken away"),
    "ABUSE_OF_POWER": N_("Abuse of power"),
    "ABUSE_OF_VULNERABILITY": N_("Abuse of a position of vulnerability"),
    "PAYMENTS_TO_CONTROLLER": N_("Payments to a person in control"),
    "SEXUAL_EXPLOITATION": N_("Sexual exploitation"),
    "FORCED_LABOUR": N_("Forced labour"),
    "DOMESTIC_SERVITUDE": N_("Domestic servitude"),
    "FORCED_CRIMINALITY": N_("Forced criminality"),
    "FORCED_MARRIAGE": N_("Forced marriage"),
    "ORGAN_REMOVAL": N_("Organ removal"),
    "AGRICULTURE": N_("Agriculture"),
    "FISHING": N_("Fishing"),
    "CONSTRUCTION": N_("Construction"),
    "MANUFACTURING": N_("Manufacturing"),
    "MINING": N_("Mining"),
    "DOMESTIC_WORK": N_("Domestic work"),
    "CARE_WORK": N_("Care work"),
    "HOSPITALITY": N_("Hospitality"),
    "SEX_INDUSTRY": N_("Sex industry"),
    "BEGGING": N_("Begging"),
    "ONLINE_SCAM": N_("Online scam centres"),
    "RETAIL": N_("Retail"),
    "AGE_0_8": N_("0 to 8"),
    "AGE_9_17": N_("9 to 17"),
    "AGE_18_20": N_("18 to 20"),
    "AGE_21_23": N_("21 to 23"),
    "AGE_24_26": N_("24 to 26"),
    "AGE_27_29": N_("27 to 29"),
    "AGE_30_38": N_("30 to 38"),
    "AGE_39_47": N_("39 to 47"),
    "AGE_48_PLUS": N_("48 or over"),
    "UNKNOWN": N_("Unknown"),
    "FEMALE": N_("Female"),
    "MALE": N_("Male"),
    "NON_BINARY": N_("Non-binary"),
    "UNDISCLOSED": N_("Not said"),
    "POSSIBLE_VICTIM": N_("Possible victim"),
    "PROBABLE_VICTIM": N_("Probable victim"),
    "CONFIRMED_VICTIM": N_("Confirmed victim"),
    "NOT_A_VICTIM": N_("Not a victim"),
    # consent: how it was obtained, and on what basis
    "WRITTEN": N_("Written"),
    "VERBAL_WITNESSED": N_("Spoken, with a witness"),
    "ELECTRONIC": N_("Electronic"),
    "CONSENT": N_("The person's own consent"),
    "GUARDIAN": N_("A guardian's consent"),
    "BEST_INTEREST": N_("The child's best interest"),
    # organisations
    "HOTLINE": N_("Hotline"),
    "NGO": N_("NGO"),
    "SHELTER": N_("Shelter"),
    "LEGAL_CLINIC": N_("Legal clinic"),
    "HEALTH_PROVIDER": N_("Health provider"),
    "EMPLOYMENT_PROGRAM": N_("Employment program"),
    "LABOUR_INSPECTORATE": N_("Labour inspectorate"),
    "BORDER_AGENCY": N_("Border agency"),
    "OVERSIGHT_BODY": N_("Oversight body"),
    # leaving a shelter, and capacity
    "INDEPENDENT_LIVING": N_("Independent living"),
    "FAMILY_REUNIFICATION": N_("Back with family"),
    "OTHER_SHELTER": N_("Another shelter"),
    "HOSPITAL": N_("Hospital"),
    "REPATRIATION": N_("Return home"),
    "LEFT_WITHOUT_NOTICE": N_("Left without notice"),
    "CAPACITY": N_("Has room"),
    "WAITLIST": N_("Waiting list"),
    "ADDITIONAL_ASSESSMENT_REQUIRED": N_("Needs an assessment first"),
    # legal matters, care and work
    "IMMIGRATION_RELIEF": N_("Immigration relief"),
    "NON_PUNISHMENT": N_("Non-punishment"),
    "RESTITUTION": N_("Compensation"),
    "LABOUR_CLAIM": N_("Labour claim"),
    "WITNESS_PROTECTION": N_("Witness protection"),
    "INTAKE_COMPLETED": N_("Intake completed"),
    "APPLICATION_FILED": N_("Application filed"),
    "HEARING_SCHEDULED": N_("Hearing scheduled"),
    "HEARING_HELD": N_("Hearing held"),
    "DECISION_RECEIVED": N_("Decision received"),
    "APPEAL_FILED": N_("Appeal filed"),
    "GRANTED": N_("Granted"),
    "DENIED": N_("Denied"),
    "SETTLED": N_("Settled"),
    "WITHDRAWN": N_("Withdrawn"),
    "REFERRED_ELSEWHERE": N_("Referred elsewhere"),
    "SEXUAL_REPRODUCTIVE": N_("Sexual and reproductive health"),
    "VOCATIONAL_TRAINING": N_("Vocational training"),
    "APPRENTICESHIP": N_("Apprenticeship"),
    "WAGE_SUBSIDY": N_("Wage subsidy"),
    "MICROFINANCE": N_("Microfinance"),
    "CREDENTIAL_RECOGNITION": N_("Recognition of qualifications"),
    "LANGUAGE": N_("Language course"),
    "BELOW_MINIMUM": N_("Below the minimum wage"),
    "MINIMUM_TO_1_5X": N_("Minimum wage to 1.5 times it"),
    "ABOVE_1_5X": N_("Above 1.5 times the minimum wage"),
    "RESERVED": N_("Bed reserved"),
    "CHECKED_IN": N_("Checked in"),
    "CHECKED_OUT": N_("Checked out"),
    "RELEASED": N_("Bed released"),
    "OPEN": N_("Matter open"),
    "CLOSED": N_("Matter closed"),
    "PENDING": N_("Pending"),
    "DELIVERED": N_("Delivered"),
    "TREATMENT_COMPLETED": N_("Treatment completed"),
    "DISENGAGED": N_("Stopped coming"),
    # statistics: how far a survivor came, and how fast
    "SEXUAL_AND_LABOUR": N_("Sexual exploitation and forced labour"),
    "NONE": N_("None yet"),
    "AWAITING_ANSWER": N_("Awaiting an answer"),
    "DECLINED": N_("Declined by the survivor"),
    "WITHIN_1_HOUR": N_("Within an hour"),
    "WITHIN_1_DAY": N_("Within a day"),
    "WITHIN_1_WEEK": N_("Within a week"),
    "WITHIN_1_MONTH": N_("Within a month"),
    "OVER_1_WEEK": N_("Over a week"),
    "OVER_1_MONTH": N_("Over a month"),
    "NOT_ACCEPTED": N_("Not accepted"),
    "NOT_PLACED": N_("Not placed"),
    "ON_TIME": N_("Answered in time"),
    "ESCALATED": N_("Overdue, escalated"),
    "ESCALATED_REROUTED": N_("Overdue, sent on to another provider"),
    "NEEDED": N_("Needed"),
    "NOT_NEEDED": N_("Not needed"),
    "ENROLLED": N_("Enrolled"),
    "EMPLOYED": N_("In work"),
    "RETAINED_3_MONTHS": N_("Still in work at 3 months"),
    "RETAINED_6_MONTHS": N_("Still in work at 6 months"),
    # roles
    "INTAKE": N_("Intake"),
    "CASEWORKER": N_("Caseworker"),
    "ORG_ADMIN": N_("Administrator"),
    "AUDITOR": N_("Auditor"),
    "OVERSIGHT": N_("Oversight"),
}


PURPOSES = {"STATISTICS": N_("for statistics, counted without your name")}
"""Where a purpose shares its name with a category."""

DIMENSIONS = {
    "AGE_BAND": N_("Age group"),
    "GENDER": N_("Gender"),
    "NATIONALITY": N_("Nationality"),
    "EXPLOITATION": N_("Type of exploitation"),
    "SECTOR": N_("Sector"),
    "JURISDICTION": N_("Where identified"),
    "REFERRAL_TYPE": N_("First referral"),
    "REFERRAL_OUTCOME": N_("Outcome of the first referral"),
    "EMPLOYMENT": N_("Work"),
    "TIME_TO_ACCEPTANCE": N_("Time to acceptance"),
    "TIME_TO_PLACEMENT": N_("Time to a bed"),
    "ESCALATION": N_("Escalation"),
    "NEED": N_("Assessed need"),
}
"""What a statistics table counts by, where a dimension shares its name with a category."""


def label(code: str | None, kind: str | None = None) -> str:
    """A code (``EMERGENCY_SHELTER``, ``case_status``) in words, translated; an unknown code as it is.
    ``kind="purpose"`` reads a code as a purpose where a category has the same name, ``kind="dimension"`` as what
    a statistics table counts by, and ``kind="figure"`` leaves a country code as it is."""
    if code is None:
        return ""
    key = code.upper()
    if kind == "purpose" and key in PURPOSES:
        return _(PURPOSES[key])
    if kind == "dimension" and key in DIMENSIONS:
        return _(DIMENSIONS[key])
    if kind == "figure" and key not in LABELS:
        return code  # a nationality or jurisdiction code, as it is
    return _(LABELS[key]) if key in LABELS else code.replace("_", " ").lower()

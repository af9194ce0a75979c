"""The partner console in a real browser (headless Chromium from Debian, driven by playwright) on the real stack:
a hotline screens a survivor, records consent and refers to a shelter; the shelter's open inbox shows the referral
without a reload, the worker accepts and checks the survivor in, and the hotline's pathway shows it; a second
shelter sees nothing; after revocation the shelter's next page load says "not shared"; a refused referral shows
its code. Every page stays under 150 KB transferred and has no serious or critical axe-core violation."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from axe_playwright_python.async_playwright import Axe
from gateway.auth import Role, create_key
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from events.consent import OrgType
from events.needs import ReferralType
from events.shelter import ConfigureShelter
from services.kernel.db import Pool
from services.kernel.settings import Settings
from tests.support.gateway import ACT, REFER, action, call, grant, partner, referral, screened, url, window
from tests.support.observe import eventually
from tests.support.oidc import IdentityProvider
from tests.support.partners import organisation
from tests.support.processes import ROOT, ServiceProcess, running

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGE_BUDGET = 150 * 1024
SCREENSHOTS = ROOT / "docs" / "console"


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, idp: IdentityProvider) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("service-logs")
    gateway = {"HAVEN_RATE_BURST": "1000", "HAVEN_ADDRESS_BURST": "5000", **idp.console_settings()}
    names = ("identification", "consent", "referrals", "shelter", "legal_aid", "statistics", "gateway")
    yield from running(logs, names, gateway)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        await launched.close()


class Checked:
    """Every page a user opens: its transfer size (compressed, as sent) and its axe-core report."""

    def __init__(self) -> None:
        self.weights: dict[str, int] = {}
        self.violations: dict[str, list[str]] = {}

    async def open(self, page: Page, path: str) -> None:
        await page.goto(console(path))
        await self.check(page)

    async def check(self, page: Page) -> None:
        name = re.sub(r"[0-9a-f-]{36}", "{id}", page.url.split("?")[0].split("/console", 1)[1] or "/")
        results = await Axe().run(page)
        serious = [v["id"] for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        self.violations[name] = serious


def console(path: str) -> str:
    return url(Settings()).removesuffix("/graphql") + "/console" + path


async def signed_in(browser: Browser, key: str, checked: Checked, language: str = "en") -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": 360, "height": 740}, locale=language)
    page = await context.new_page()
    weigh(page, checked)
    await checked.open(page, "")
    await page.get_by_label(re.compile("API key|clave|clé", re.I)).fill(key)
    await page.locator("form[action='/console/sign-in'] button[type=submit]").click()
    await page.wait_for_load_state()
    assert page.url.endswith("/console/home"), await page.locator("main").inner_text()
    await checked.check(page)
    return context, page


def weigh(page: Page, checked: Checked) -> None:
    """Add up what each page load transfers: the document and everything it loads (bodies as sent, headers)."""
    loads: dict[str, int] = {}

    async def finished(request: Any) -> None:
        sizes = await request.sizes()
        document = request.frame.url.split("?")[0]
        loads[document] = loads.get(document, 0) + sizes["responseBodySize"] + sizes["responseHeadersSize"]
        checked.weights[document] = max(checked.weights.get(document, 0), loads[document])

    def navigated(frame: Any) -> None:
        if frame == page.main_frame:
            loads[frame.url.split("?")[0]] = 0

    page.on("requestfinished", finished)
    page.on("framenavigated", navigated)


async def test_a_hotline_refers_and_a_shelter_takes_the_survivor_in_through_the_console(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, browser: Browser
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL, name="Northside Hotline")
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER, name="Safe Harbour")
    other = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER, name="Elsewhere House")
    shelter_key = await partner(db, shelter, Role.CASEWORKER)
    other_key = await partner(db, other, Role.CASEWORKER)
    await partner(db, hotline, Role.CASEWORKER)
    async with db.acquire() as conn:
        intake_key = await create_key(conn, hotline.org_id, Role.INTAKE)
    configured = await call(settings, shelter_key, ACT, {"a": action(ConfigureShelter, beds={"adult_women": 3}),
                                                         "w": 10_000})  # fmt: skip
    assert configured[1]["data"]["providerAction"]["outcome"]["status"] == "APPLIED", configured

    async def offered() -> bool:  # the shelter's announced capacity has reached the gateway
        return bool(await db.fetchval("SELECT capacity <> '{}' FROM gateway.organisations WHERE org_id = $1",
                                      shelter.org_id))  # fmt: skip

    await eventually(offered)
    checked = Checked()
    _, hotline_page = await signed_in(browser, intake_key, checked)
    _, shelter_page = await signed_in(browser, shelter_key, checked)
    _, other_page = await signed_in(browser, other_key, checked)

    # The hotline screens a survivor …
    await checked.open(hotline_page, "/screen")
    await hotline_page.get_by_label("Given name").fill("Ana")
    await hotline_page.get_by_label("Family name").fill("Reyes")
    await hotline_page.get_by_label("Recruitment").check()
    await hotline_page.get_by_label("Deception").check()
    await hotline_page.get_by_label("Forced labour").check()
    await hotline_page.get_by_role("button", name="Record the screening").click()
    await hotline_page.wait_for_url(re.compile(r"/console/survivors/[0-9a-f-]{36}/consent$"))
    survivor = UUID(hotline_page.url.split("/")[-2])
    await checked.check(hotline_page)

    # … records consent with her for the shelter …
    await hotline_page.get_by_label("Who may see it").select_option(shelter.org_id)
    await hotline_page.get_by_label("Who you are (name, date of birth, documents)").check()
    await hotline_page.get_by_label("Which services you are using, and how it is going").check()
    await hotline_page.get_by_role("button", name="Record consent").click()
    await hotline_page.get_by_text("Done.").wait_for()

    # … while the shelter has its inbox open.
    await checked.open(shelter_page, "/inbox")
    assert await shelter_page.locator("li[id^='referral-']").count() == 0
    assert "Adult women: 3" in await shelter_page.locator(".beds").inner_text(), "the bed board"

    await checked.open(hotline_page, f"/survivors/{survivor}/refer")
    await hotline_page.get_by_label(re.compile(re.escape(shelter.org_id))).check()
    form = hotline_page.locator("form[action$='/refer'][method=post]")
    sent = await form.evaluate("f => Object.fromEntries(new FormData(f))")
    await hotline_page.get_by_role("button", name="Send the referral").click()
    await hotline_page.get_by_text("Done.").wait_for()
    # The same form sent again (the answer was lost, or the coordinator sent it twice): one referral, answered.
    again = await hotline_page.request.post(f"{hotline_page.url}", form=sent)
    assert again.status == 200, await again.text()
    assert await db.fetchval("SELECT count(*) FROM referrals.referrals WHERE survivor_id = $1", survivor) == 1

    card = shelter_page.locator("li[id^='referral-']")
    await card.first.wait_for(timeout=30_000)  # pushed to the open page: no reload
    assert "Emergency shelter" in await card.first.inner_text()
    await shelter_page.get_by_role("button", name="Accept").first.click()
    await shelter_page.get_by_text("Done.").wait_for()
    await eventually(lambda: _status(db, survivor, "accepted"))
    await checked.open(shelter_page, "/inbox")
    await shelter_page.get_by_role("button", name="Check in").click()
    await shelter_page.get_by_text("Done.").wait_for()

    await eventually(lambda: _status(db, survivor, "in_progress"))
    await checked.open(hotline_page, f"/survivors/{survivor}")
    timeline = await hotline_page.locator("#h-referrals + ul").inner_text()
    assert "Accepted" in timeline
    assert shelter.org_id in timeline

    # The shelter sees her name; another shelter sees nothing of her, and its referral attempt is refused.
    await checked.open(shelter_page, f"/survivors/{survivor}")
    assert "Ana" in await shelter_page.locator("main").inner_text()
    await checked.open(other_page, f"/survivors/{survivor}")
    assert "Ana" not in await other_page.content()
    await checked.open(other_page, f"/survivors/{survivor}/refer")
    await other_page.get_by_role("button", name="Send the referral").click()
    refusal = other_page.get_by_role("alert")
    await refusal.wait_for()
    assert "FORBIDDEN" in await refusal.inner_text()
    assert "care team" in await refusal.inner_text()

    # The survivor revokes with the hotline; the shelter's next page load says what is not shared, never a blank.
    await checked.open(hotline_page, f"/survivors/{survivor}/consent")
    await hotline_page.get_by_role("button", name="Revoke").click()
    await hotline_page.get_by_text("Done.").wait_for()
    assert await hotline_page.get_by_text("Revoked").count() == 1
    await checked.open(shelter_page, f"/survivors/{survivor}")
    shown = await shelter_page.locator("main").inner_text()
    assert "Ana" not in shown
    assert "Not shared by the survivor — Who you are (name, date of birth, documents)" in shown

    # The survivor's own page, in Spanish, and the ledger names the shelter's reads.
    await checked.open(hotline_page, f"/survivors/{survivor}/ledger?lang=es")
    ledger = await hotline_page.locator("main").inner_text()
    assert "Quién vio su información" in ledger
    assert shelter.org_id in ledger
    if os.environ.get("HAVEN_CONSOLE_SCREENSHOTS"):
        await _screenshots(hotline_page, shelter_page, survivor)

    assert len(checked.violations) >= 8, checked.violations  # sign-in, screen, consent, refer, inbox, pathway …
    assert not {page: v for page, v in checked.violations.items() if v}, checked.violations
    heavy = {page: size for page, size in checked.weights.items() if size > PAGE_BUDGET}
    assert len(checked.weights) >= 8, checked.weights
    assert not heavy, f"over {PAGE_BUDGET} bytes: {heavy}"


async def test_a_legal_clinic_opens_a_matter_and_sees_a_refusal_where_it_acted(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, browser: Browser
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    clinic = organisation(OrgType.LEGAL_CLINIC, ReferralType.LEGAL_AID, name="Justice Clinic")
    intake = await partner(db, hotline, Role.INTAKE)
    clinic_key = await partner(db, clinic, Role.CASEWORKER)
    survivor = await screened(settings, db, intake)
    await eventually(lambda: _known(db, clinic.org_id))
    made = await call(settings, intake, REFER, {"r": referral(survivor, clinic.org_id, referral_type="legal_aid"),
                                                "w": 10_000})  # fmt: skip
    assert made[1]["data"]["requestReferral"]["outcome"]["status"] == "APPLIED", made
    await eventually(lambda: _arrived(db, survivor))
    checked = Checked()
    _, page = await signed_in(browser, clinic_key, checked, "fr")
    await checked.open(page, "/inbox?lang=en")
    await page.get_by_label("Matter").select_option("LABOUR_CLAIM")
    await page.get_by_role("button", name="Open a matter").click()
    await page.get_by_text("Done.").wait_for()
    await eventually(lambda: _status(db, survivor, "in_progress"))
    await checked.open(page, "/inbox")

    await page.get_by_label("Milestone").select_option("HEARING_SCHEDULED")
    await page.get_by_role("button", name="Record", exact=True).click()  # no date: the legal aid service refuses
    refusal = page.get_by_role("alert")
    await refusal.wait_for()
    assert "hearing_date_required" in await refusal.inner_text()
    assert "a scheduled hearing needs its date" in await refusal.inner_text()
    await page.get_by_label("Language").select_option("fr")  # from the page that answered a form
    await page.get_by_role("button", name="Change").click()
    await page.get_by_role("heading", name="Orientations reçues").wait_for()
    await checked.open(page, "/inbox?lang=en")

    await page.get_by_label("Milestone").select_option("HEARING_SCHEDULED")
    await page.get_by_label("Hearing date").fill("2027-02-01")
    await page.get_by_role("button", name="Record", exact=True).click()
    await page.get_by_text("Done.").wait_for()
    await page.get_by_label("Outcome").select_option("GRANTED")
    await page.get_by_role("button", name="Close the matter").click()
    await page.get_by_text("Done.").wait_for()
    await eventually(lambda: _status(db, survivor, "completed"))
    await checked.open(page, f"/survivors/{survivor}")
    assert "Not shared by the survivor — Your legal case" in await page.locator("main").inner_text()
    await grant(settings, db, intake, survivor, grantee={"org_id": clinic.org_id}, categories=["legal"], **window())
    await checked.open(page, f"/survivors/{survivor}")
    services_shown = await page.locator("#h-services + *").locator("..").inner_text()
    assert "Labour claim · Matter closed · Granted" in services_shown
    assert "Hearing scheduled — 2027-02-01" in services_shown
    assert not {p: v for p, v in checked.violations.items() if v}, checked.violations


async def test_an_admin_sets_the_beds_and_an_oversight_body_checks_the_record(
    services: dict[str, ServiceProcess], db: Pool, browser: Browser
) -> None:
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    admin = await partner(db, shelter, Role.ORG_ADMIN)
    oversight = await partner(db, organisation(OrgType.OVERSIGHT_BODY), Role.OVERSIGHT)
    checked = Checked()
    _, page = await signed_in(browser, admin, checked)
    await checked.open(page, "/organisation")
    await page.get_by_label("Adult women").fill("4")
    await page.get_by_label("Families").fill("2")
    await page.get_by_role("button", name="Save the beds").click()
    await page.get_by_text("Done.").wait_for()

    async def announced() -> bool:
        capacity = await db.fetchval("SELECT capacity FROM gateway.organisations WHERE org_id = $1", shelter.org_id)
        return bool(capacity and len(capacity) == 2)

    await eventually(announced)
    await page.get_by_label("Who it is for").fill("Night desk")
    await page.get_by_role("button", name="Make a key").click()
    new_key = await page.locator("code.key").inner_text()
    assert new_key.startswith("hvn_")
    night_desk = page.locator("li", has_text="Night desk")
    await night_desk.get_by_role("button", name="Revoke").click()
    await page.locator("li", has_text="Night desk").get_by_text("Revoked").wait_for()
    assert await page.locator("code.key").count() == 0, "a key is shown once"
    refused = await (await browser.new_context()).new_page()
    await refused.goto(console(""))
    await refused.get_by_label("API key").fill(new_key)
    await refused.locator("form[action='/console/sign-in'] button[type=submit]").click()
    assert "not valid, or it was revoked" in await refused.get_by_role("alert").inner_text()
    await page.get_by_label("Address (https)").fill("https://cases.partner.example/haven")
    await page.get_by_label("referral.requested").check()
    await page.get_by_role("button", name="Add the webhook").click()
    assert (await page.locator("code.key").inner_text()).startswith("whsec_"), "the signing secret, shown once"
    assert await page.get_by_text("https://cases.partner.example/haven").count() == 1
    _, watcher = await signed_in(browser, oversight, checked)
    await checked.open(watcher, "/audit")
    assert "The access record is intact" in await watcher.get_by_role("status").inner_text()
    assert await watcher.get_by_role("link", name="Inbox").count() == 0, "oversight has no inbox, and sees none"
    assert not {p: v for p, v in checked.violations.items() if v}, checked.violations


async def test_consent_across_a_border_shows_on_the_pathway_and_oversight_reads_statistics_and_outcomes(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, browser: Browser
) -> None:
    """A hotline in GB records consent that reaches a shelter in FR and refers there: the consent card names the
    country and the pathway shows the border crossed. An oversight body releases a national table and reads how
    each organisation answers; the shelter's admin releases and reads its own figures only."""
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL, name="Northside Hotline")
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER, name="Maison Refuge",
                           jurisdictions=frozenset({"FR"}))  # fmt: skip
    await partner(db, hotline, Role.CASEWORKER)
    shelter_key = await partner(db, shelter, Role.CASEWORKER)
    body = organisation(OrgType.OVERSIGHT_BODY, name="National Rapporteur")
    await partner(db, body, Role.CASEWORKER)
    async with db.acquire() as conn:
        intake = await create_key(conn, hotline.org_id, Role.INTAKE)
        admin = await create_key(conn, shelter.org_id, Role.ORG_ADMIN)
        oversight = await create_key(conn, body.org_id, Role.OVERSIGHT)
    beds = await call(settings, shelter_key, ACT, {"a": action(ConfigureShelter, beds={"adult_women": 2}),
                                                   "w": 10_000})  # fmt: skip
    assert beds[1]["data"]["providerAction"]["outcome"]["status"] == "APPLIED", beds
    survivor = await screened(settings, db, intake)
    checked = Checked()
    _, hotline_page = await signed_in(browser, intake, checked)

    await checked.open(hotline_page, f"/survivors/{survivor}/consent")
    await hotline_page.get_by_label("Who may see it").select_option(shelter.org_id)
    assert "FR" in await hotline_page.locator(f"option[value='{shelter.org_id}']").inner_text(), "where it works"
    await hotline_page.get_by_label("Who you are (name, date of birth, documents)").check()
    await hotline_page.get_by_label("Which services you are using, and how it is going").check()
    await hotline_page.get_by_label("Also organisations in these countries").check()
    await hotline_page.get_by_label("Country codes, comma separated (e.g. FR, DE)").fill("fr")
    await hotline_page.get_by_role("button", name="Record consent").click()
    await hotline_page.get_by_text("Done.").wait_for()
    assert await hotline_page.get_by_text("Also across borders, in FR").count() == 1

    await checked.open(hotline_page, f"/survivors/{survivor}/refer")
    await hotline_page.get_by_label(re.compile(re.escape(shelter.org_id))).check()
    await hotline_page.get_by_role("button", name="Send the referral").click()
    await hotline_page.get_by_text("Done.").wait_for()

    async def projected() -> bool:
        return bool(await db.fetchval("SELECT 1 FROM gateway.referrals WHERE survivor_id = $1", survivor))

    await eventually(projected)
    await checked.open(hotline_page, f"/survivors/{survivor}")
    assert "Crossed a border: GB → FR" in await hotline_page.locator("main").inner_text()

    # The oversight body: a national table, its CSV, and every organisation's answers (this one's withheld).
    _, watcher = await signed_in(browser, oversight, checked)
    await checked.open(watcher, "/statistics")
    await watcher.get_by_label("Count by").select_option("AGE_BAND")
    await watcher.get_by_label("And by (optional)").select_option("GENDER")
    await watcher.get_by_role("button", name="Release a table").click()
    await watcher.get_by_text("Done.").wait_for()
    await checked.check(watcher)
    table = watcher.locator("section.release").first
    assert "Age group \u00d7 Gender" in await table.get_by_role("heading").inner_text()
    assert await table.get_by_role("row").count() == 12, "ten age groups, the total, and the header"
    total = await table.get_by_role("row").last.locator("td").last.inner_text()
    assert total == "·" or int(total.replace(",", "")) >= 11, "a figure of 11 or more, or suppressed"
    exported = await watcher.request.get(console("/statistics/") + (await table.get_attribute("id") or "")[8:] + ".csv")
    assert exported.ok
    assert (await exported.text()).startswith("yearOfRegistration,period,ageBroad,gender,count,suppressed")
    await checked.open(watcher, "/outcomes")
    row = watcher.get_by_role("row").filter(has_text=shelter.org_id)
    assert "Fewer than 11: withheld" in await row.inner_text(), "one referral: about one person"

    # The shelter's admin: its own figures, whole, and its own releases only.
    _, own = await signed_in(browser, admin, checked)
    await checked.open(own, "/outcomes")
    cells = await own.get_by_role("row").filter(has_text=shelter.org_id).locator("td").all_inner_texts()
    assert cells[:2] == ["Emergency shelter", "1"], cells
    await checked.open(own, "/statistics")
    assert await own.locator("section.release").count() == 0, "the national tables are not an organisation's"
    await own.get_by_label("Count by").select_option("TIME_TO_PLACEMENT")
    await own.get_by_role("button", name="Release a table").click()
    await own.get_by_text("Done.").wait_for()
    assert "Time to a bed" in await own.locator("section.release").first.get_by_role("heading").inner_text()
    assert await own.locator("section.release").count() == 1
    assert not {p: v for p, v in checked.violations.items() if v}, checked.violations
    heavy = {p: size for p, size in checked.weights.items() if size > PAGE_BUDGET}
    assert not heavy, f"over {PAGE_BUDGET} bytes: {heavy}"


async def test_staff_sign_in_through_their_organisations_identity_provider(
    services: dict[str, ServiceProcess], db: Pool, browser: Browser, idp: IdentityProvider
) -> None:
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    await partner(db, shelter, Role.ORG_ADMIN)
    checked = Checked()

    async def sign_in_as(org: str) -> Page:
        idp.sign_in_as = (org, "caseworker")
        page = await (await browser.new_context(viewport={"width": 360, "height": 740})).new_page()
        await checked.open(page, "")
        await page.get_by_role("link", name="Sign in with your organisation's account").click()
        await page.wait_for_load_state()
        return page

    page = await sign_in_as(shelter.org_id)
    assert page.url.endswith("/console/home"), await page.content()
    assert f"{shelter.org_id} · Caseworker" in await page.locator("header").inner_text()
    await checked.open(page, "/inbox")
    assert await page.get_by_role("heading", name="Referral inbox").count() == 1
    assert idp.refused == [], "the code was redeemed with the PKCE verifier that made its challenge"

    stranger = await sign_in_as(f"shelter-{uuid4().hex[:8]}")  # vouched for, but not an organisation Haven knows
    assert stranger.url.split("?")[0].endswith("/console/oidc/callback")
    assert "did not work" in await stranger.get_by_role("alert").inner_text()
    await checked.open(stranger, "/inbox")
    assert stranger.url.endswith("/console"), "no session was opened"

    forged = await page.context.new_page()
    await forged.goto(console(f"/oidc/callback?code=stolen&state={uuid4().hex}"))  # a callback nobody started
    assert "did not work" in await forged.get_by_role("alert").inner_text()
    assert not {p: v for p, v in checked.violations.items() if v}, checked.violations


async def _known(db: Pool, org_id: str) -> bool:
    return bool(
        await db.fetchval("SELECT 1 FROM legal_aid.clinics WHERE org_id = $1", org_id)
        or await db.fetchval("SELECT 1 FROM referrals.organisations WHERE org_id = $1", org_id)
    )


async def _arrived(db: Pool, survivor: UUID) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM legal_aid.referrals_in WHERE survivor_id = $1", survivor))


async def _status(db: Pool, survivor: UUID, status: str) -> bool:
    found = await db.fetchval("SELECT status FROM gateway.referrals WHERE survivor_id = $1", survivor)
    return bool(found == status)


async def _screenshots(hotline: Page, shelter: Page, survivor: UUID) -> None:
    """The main screens in English and Spanish, for the README (HAVEN_CONSOLE_SCREENSHOTS=1)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for language in ("en", "es"):
        for page, path, name in (
            (shelter, "/inbox", "inbox"),
            (hotline, f"/survivors/{survivor}", "pathway"),
            (hotline, f"/survivors/{survivor}/ledger", "ledger"),
            (hotline, "/screen", "screen"),
        ):
            await page.goto(console(f"{path}?lang={language}"))
            await page.screenshot(path=str(SCREENSHOTS / f"{name}-{language}.png"), full_page=True)

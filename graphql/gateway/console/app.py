"""The partner console: server-rendered pages for the people at hotlines, shelters, clinics and programs.

Every page is built from GraphQL operations (``console.operations``) run in the gateway's process as the
signed-in organisation: the same schema, consent at the field, access audit and refusal codes as ``/graphql``.
The console reads no table of survivor data itself; its own state is the session (``console_sessions``).

Why server-rendered, with a few lines of script: a caseworker on an old phone and a weak connection gets a whole
page in one small response that works without JavaScript; the script only keeps the inbox live (server-sent
events from the ``referralUpdates`` subscription) and nothing is loaded from any other host.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode
from uuid import uuid4

import aiohttp
import jinja2
import jwt
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from strawberry.utils.str_converters import to_camel_case

from events.consent import Basis, Category, ConsentMethod, Purpose
from events.employment import ProgramType, WageBand
from events.health import HealthService
from events.identification import Act, AgeBand, ExploitationPurpose, Gender, Means, ScreeningOutcome, Sector
from events.legal_aid import MatterOutcome, MatterType, Milestone
from events.needs import ReferralType, Urgency
from events.referrals import RejectionReason
from events.shelter import Destination, UnitType
from events.statistics import Dimension
from gateway import webhooks
from gateway.api.base import Context
from gateway.api.statistics import export
from gateway.auth import OidcVerifier, Principal, Role, authenticate, hash_key, principal_for, principal_of
from gateway.consent import ConsentScope
from gateway.console import i18n, operations
from services.kernel.db import Pool

HERE = Path(__file__).parent
COOKIE = "haven_console"
PRE_COOKIE = "haven_console_csrf"  # before sign-in: the sign-in form's CSRF token (double submit)
IDLE = timedelta(hours=8)
LOGIN = timedelta(minutes=10)  # a sign-in through the identity provider must come back within this
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")  # fmt: skip


class Executes(Protocol):
    """What the console needs of the gateway's GraphQL app: its schema and the request context it builds."""

    schema: Any

    async def get_context(self, request: Any, response: Any) -> Context: ...


@dataclass(frozen=True)
class Session:
    session_hash: str
    principal: Principal
    csrf: str
    language: str


@dataclass(frozen=True)
class ConsoleOidc:
    """Sign-in through the organisation's identity provider: the authorization code flow with PKCE (S256)."""

    issuer: str
    jwks_url: str
    authorize_url: str
    token_url: str
    client_id: str

    @classmethod
    def of(cls, settings: Any) -> ConsoleOidc | None:
        found = (settings.oidc_issuer, settings.oidc_jwks_url, settings.oidc_authorize_url, settings.oidc_token_url,
                 settings.oidc_client_id)  # fmt: skip
        return cls(*found) if all(found) else None

    def verifier(self) -> OidcVerifier:
        return OidcVerifier(self.issuer, self.client_id, self.jwks_url)  # an ID token's audience is the client


async def session_principal(pool: Pool, row: Any) -> Principal | None:
    """Who a session acts as: its API key's principal while the key holds, or what the identity provider vouched
    for until its ID token expires."""
    if row["key_hash"] is not None:
        return await principal_of(pool, row["key_hash"])
    if row["expires_at"] is None or row["expires_at"] <= datetime.now(UTC):
        return None
    return await principal_for(pool, row["org_id"], row["role"])


class SessionWatch:
    """A console session's subscription re-checks the session (and the key behind it) instead of a key."""

    interval = 30.0

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def valid(self, token: str) -> bool:
        row = await self.pool.fetchrow("SELECT * FROM gateway.console_sessions WHERE session_hash = $1", token)
        return row is not None and await session_principal(self.pool, row) is not None


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Console:
    def __init__(self, graphql: Executes, pool: Pool, oidc: ConsoleOidc | None = None) -> None:
        self.graphql, self.pool, self.oidc = graphql, pool, oidc
        self.verifier = oidc.verifier() if oidc else None
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, extensions=["jinja2.ext.i18n"],
            undefined=jinja2.StrictUndefined,
        )  # fmt: skip
        self.templates.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension
            lambda s: i18n.translations(i18n.CURRENT.get()).gettext(s),
            lambda s, p, n: i18n.translations(i18n.CURRENT.get()).ngettext(s, p, n),
            newstyle=True,
        )
        self.templates.filters.update(label=i18n.label, when=i18n.when, number=i18n.number)

    def routes(self) -> list[BaseRoute]:
        page = self._page
        return [
            Route("/console", self.sign_in_page, methods=["GET"]),
            Route("/console/sign-in", self.sign_in, methods=["POST"]),
            Route("/console/oidc/start", self.oidc_start, methods=["GET"]),
            Route("/console/oidc/callback", self.oidc_callback, methods=["GET"], name="console-oidc-callback"),
            Route("/console/sign-out", page(self.sign_out), methods=["POST"]),
            Route("/console/home", page(self.home), methods=["GET"]),
            Route("/console/inbox", page(self.inbox), methods=["GET"]),
            Route("/console/inbox/events", self.inbox_events, methods=["GET"]),
            Route("/console/referrals/{id}/move", page(self.move), methods=["POST"]),
            Route("/console/referrals/{id}/act", page(self.act), methods=["POST"]),
            Route("/console/screen", page(self.screen), methods=["GET", "POST"]),
            Route("/console/organisation", page(self.organisation), methods=["GET", "POST"]),
            Route("/console/audit", page(self.audit), methods=["GET"]),
            Route("/console/statistics", page(self.statistics), methods=["GET", "POST"]),
            Route("/console/statistics/{id}.csv", page(self.statistics_csv), methods=["GET"]),
            Route("/console/outcomes", page(self.outcomes), methods=["GET"]),
            Route("/console/survivors/{id}", page(self.pathway), methods=["GET"]),
            Route("/console/survivors/{id}/ledger", page(self.ledger), methods=["GET"]),
            Route("/console/survivors/{id}/consent", page(self.consent), methods=["GET", "POST"]),
            Route("/console/survivors/{id}/consent/revoke", page(self.revoke), methods=["POST"]),
            Route("/console/survivors/{id}/refer", page(self.refer), methods=["GET", "POST"]),
            Mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static"),
        ]

    # ------------------------------------------------------------ sessions, CSRF, headers

    async def session(self, request: Request) -> Session | None:
        sid = request.cookies.get(COOKIE)
        if not sid:
            return None
        row = await self.pool.fetchrow(
            "UPDATE gateway.console_sessions SET seen_at = now() WHERE session_hash = $1 AND seen_at > $2 RETURNING *",
            _hash(sid), datetime.now(UTC) - IDLE,
        )  # fmt: skip
        if row is None:
            return None
        who = await session_principal(self.pool, row)
        if who is None:  # the key was revoked (so is every session opened with it), or the ID token expired
            await self.pool.execute("DELETE FROM gateway.console_sessions WHERE session_hash = $1 OR key_hash = $2",
                                    row["session_hash"], row["key_hash"])  # fmt: skip
            return None
        language = i18n.pick(request.query_params.get("lang"), None) if "lang" in request.query_params else None
        if language and language != row["language"]:
            await self.pool.execute("UPDATE gateway.console_sessions SET language = $2 WHERE session_hash = $1",
                                    row["session_hash"], language)  # fmt: skip
        return Session(row["session_hash"], who, row["csrf"], language or row["language"])

    def _page(self, handler: Callable[[Request, Session], Awaitable[Response]]) -> Callable[[Request], Awaitable[Any]]:
        """A page for signed-in users: the session, its language, CSRF on every POST, and the security headers."""

        async def endpoint(request: Request) -> Response:
            session = await self.session(request)
            if session is None:
                return self._headers(RedirectResponse("/console", status_code=303))
            token = i18n.CURRENT.set(session.language)
            try:
                if request.method == "POST":
                    form = await request.form()
                    if not hmac.compare_digest(str(form.get("csrf", "")), session.csrf):
                        return self._headers(HTMLResponse(i18n._("This form has expired: go back and try again."),
                                                          status_code=403))  # fmt: skip
                return self._headers(await handler(request, session))
            finally:
                i18n.CURRENT.reset(token)

        return endpoint

    @staticmethod
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"  # pages carry survivor data: never kept by a browser or proxy
        return response

    def render(
        self, request: Request, session: Session | None, template: str, status: int = 200, **values: Any
    ) -> Response:
        body = self.templates.get_template(template).render(
            me=session.principal if session else None, csrf=session.csrf if session else values.pop("csrf", ""),
            lang=i18n.CURRENT.get(), languages=i18n.LANGUAGES, path=request.url.path, here=_page_of(request), Role=Role,
            **values,
        )  # fmt: skip
        return HTMLResponse(body, status_code=status)

    # ------------------------------------------------------------ running the public API

    async def run(
        self, request: Request, session: Session, query: str, variables: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run one operation as the session's organisation; the data and the errors (message and extensions)."""
        context = await self._context(request, session)
        result = await self.graphql.schema.execute(query, variable_values=variables, context_value=context)
        errors = [{"message": e.message, "path": e.path or [], **(e.extensions or {})} for e in result.errors or []]
        return result.data or {}, errors

    async def _context(self, request: Request, session: Session) -> Context:
        context = await self.graphql.get_context(request, None)
        context["principal"], context["token"] = session.principal, session.session_hash
        context["consent"], context["key_watch"] = ConsentScope(self.pool, session.principal), SessionWatch(self.pool)
        return context

    async def command(
        self, request: Request, session: Session, query: str, variables: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Send a command; the mutation's answer and what became of it (APPLIED, or REFUSED/ERROR with a code)."""
        data, errors = await self.run(request, session, query, variables)
        if errors:
            return {}, _refused(errors)
        (answer,) = data.values()
        return answer, answer["outcome"]

    # ------------------------------------------------------------ signing in and out

    async def sign_in_page(self, request: Request, error: str | None = None, status: int = 200) -> Response:
        if error is None and await self.session(request) is not None:
            return self._headers(RedirectResponse("/console/home", status_code=303))
        language = i18n.pick(request.query_params.get("lang"), request.headers.get("accept-language"))
        token = i18n.CURRENT.set(language)
        try:
            csrf = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
            response = self.render(request, None, "sign_in.html", status, csrf=csrf, error=error,
                                   oidc=self.oidc is not None)  # fmt: skip
        finally:
            i18n.CURRENT.reset(token)
        response.set_cookie(PRE_COOKIE, csrf, httponly=True, secure=True, samesite="strict", path="/console")
        return self._headers(response)

    async def sign_in(self, request: Request) -> Response:
        form = await request.form()
        expected = request.cookies.get(PRE_COOKIE, "")
        if not expected or not hmac.compare_digest(str(form.get("csrf", "")), expected):
            return await self.sign_in_page(request, i18n._("This form has expired: try again."), 403)
        key = str(form.get("key", "")).strip()
        who = await authenticate(self.pool, key) if key.startswith("hvn_") else None
        if who is None:
            return await self.sign_in_page(request, i18n._("That key is not valid, or it was revoked."), 401)
        language = i18n.pick(str(form.get("lang", "")), request.headers.get("accept-language"))
        return await self._open_session(language, key_hash=hash_key(key))

    async def _open_session(
        self, language: str, *, key_hash: str | None = None, who: Principal | None = None,
        expires_at: datetime | None = None,
    ) -> Response:  # fmt: skip
        sid = secrets.token_urlsafe(32)
        await self.pool.execute(
            "INSERT INTO gateway.console_sessions (session_hash, key_hash, csrf, language, org_id, role, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            _hash(sid), key_hash, secrets.token_urlsafe(32), language, who and who.org_id, who and who.role,
            expires_at,
        )  # fmt: skip
        await self.pool.execute("DELETE FROM gateway.console_sessions WHERE seen_at < $1", datetime.now(UTC) - IDLE)
        response = RedirectResponse("/console/home", status_code=303)
        response.set_cookie(COOKIE, sid, httponly=True, secure=True, samesite="strict", path="/console")
        response.delete_cookie(PRE_COOKIE, path="/console")
        return self._headers(response)

    def _callback_url(self, request: Request) -> str:
        return str(request.url_for("console-oidc-callback"))

    async def oidc_start(self, request: Request) -> Response:
        """Off to the organisation's identity provider, with a fresh state, nonce and PKCE challenge."""
        if self.oidc is None:
            return self._headers(Response(status_code=404))
        state, verifier, nonce = (secrets.token_urlsafe(32) for _ in range(3))
        language = i18n.pick(request.query_params.get("lang"), request.headers.get("accept-language"))
        await self.pool.execute(
            "INSERT INTO gateway.console_logins (state, verifier, nonce, language) VALUES ($1, $2, $3, $4)",
            state, verifier, nonce, language,
        )  # fmt: skip
        await self.pool.execute("DELETE FROM gateway.console_logins WHERE created_at < $1", datetime.now(UTC) - LOGIN)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode({"response_type": "code", "client_id": self.oidc.client_id, "scope": "openid",
                           "redirect_uri": self._callback_url(request), "state": state, "nonce": nonce,
                           "code_challenge": challenge, "code_challenge_method": "S256"})  # fmt: skip
        return self._headers(RedirectResponse(f"{self.oidc.authorize_url}?{query}", status_code=303))

    async def oidc_callback(self, request: Request) -> Response:
        """Back from the identity provider: the code for an ID token (proved with the PKCE verifier), then a session
        for the organisation and role it names, until the token expires."""
        if self.oidc is None or self.verifier is None:
            return self._headers(Response(status_code=404))
        failed = i18n._("Signing in through your organisation did not work: try again.")
        login = await self.pool.fetchrow(
            "DELETE FROM gateway.console_logins WHERE state = $1 AND created_at > $2 RETURNING *",
            request.query_params.get("state", ""), datetime.now(UTC) - LOGIN,
        )  # fmt: skip
        code = request.query_params.get("code")
        if login is None or not code:
            return await self.sign_in_page(request, failed, 400)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self._callback_url(request),
                "client_id": self.oidc.client_id, "code_verifier": login["verifier"]}  # fmt: skip
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
                http.post(self.oidc.token_url, data=form) as answer,
            ):
                tokens = await answer.json(content_type=None) if answer.status == 200 else {}
            id_token = tokens.get("id_token", "") if isinstance(tokens, dict) else ""
            claims = await asyncio.to_thread(self.verifier.claims, str(id_token))
        except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError):
            return await self.sign_in_page(request, failed, 401)
        who = await principal_for(self.pool, claims.get("haven_org"), claims.get("haven_role"))
        if who is None or not hmac.compare_digest(str(claims.get("nonce", "")), login["nonce"]):
            return await self.sign_in_page(request, failed, 401)
        expires = min(datetime.fromtimestamp(claims["exp"], UTC), datetime.now(UTC) + IDLE)
        return await self._open_session(login["language"], who=who, expires_at=expires)

    async def sign_out(self, request: Request, session: Session) -> Response:
        await self.pool.execute("DELETE FROM gateway.console_sessions WHERE session_hash = $1", session.session_hash)
        response = RedirectResponse("/console", status_code=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    # ------------------------------------------------------------ pages

    async def home(self, request: Request, session: Session) -> Response:
        data, errors = await self.run(request, session, operations.MY_REFERRALS, {"first": 50})
        made = [e["node"] for e in (data.get("myReferrals") or {}).get("edges", [])]
        return self.render(request, session, "home.html", referrals=made[::-1], errors=errors)

    async def _inbox_rows(self, request: Request, session: Session) -> tuple[list[dict[str, Any]], dict[str, str]]:
        data, _errors = await self.run(request, session, operations.INBOX, {"first": 100})
        wanted = {k: request.query_params.get(k, "") for k in ("status", "urgency")}
        now = datetime.now(UTC)
        rows = []
        for edge in (data.get("inbox") or {}).get("edges", []):
            node = edge["node"]
            if wanted["status"] == "OPEN" and node["status"] not in ("REQUESTED", "RECEIVED", "ACCEPTED", "ON_HOLD"):
                continue
            if wanted["status"] not in ("", "OPEN") and node["status"] != wanted["status"]:
                continue
            if wanted["urgency"] and node["urgency"] != wanted["urgency"]:
                continue
            rows.append({**node, "left": i18n.time_left(node["deadline"], now),
                         "overdue": datetime.fromisoformat(node["deadline"]) < now})  # fmt: skip
        rows.sort(key=lambda r: r["deadline"])
        return rows, wanted

    async def inbox(self, request: Request, session: Session, outcome: dict[str, Any] | None = None) -> Response:
        rows, wanted = await self._inbox_rows(request, session)
        beds: list[dict[str, Any]] = []
        if session.principal.org_type == "shelter" and not request.query_params.get("fragment"):
            data, _errors = await self.run(request, session, operations.BEDS)
            mine = [o for o in data.get("directory") or [] if o["orgId"] == session.principal.org_id]
            beds = sorted((c for o in mine for c in o["capacity"] if c["unitType"]), key=lambda c: c["unitType"])
        template = "_inbox_rows.html" if request.query_params.get("fragment") else "inbox.html"
        return self.render(request, session, template, rows=rows, wanted=wanted, outcome=outcome,
                           statuses=["OPEN", "REQUESTED", "RECEIVED", "ACCEPTED", "ON_HOLD", "REJECTED", "COMPLETED"],
                           urgencies=[u.name for u in Urgency], reasons=[r.name for r in RejectionReason],
                           org_type=str(session.principal.org_type), choices=CHOICES, beds=beds)  # fmt: skip

    async def inbox_events(self, request: Request) -> Response:
        """Server-sent events: one ``changed`` per move of a referral this organisation made or received."""
        session = await self.session(request)
        if session is None:
            return self._headers(Response(status_code=401))
        context = await self._context(request, session)
        stream = await self.graphql.schema.subscribe(operations.FOLLOW, context_value=context)

        async def events() -> AsyncIterator[bytes]:
            yield b"retry: 3000\n\n"
            if not hasattr(stream, "__aiter__"):
                return
            async with contextlib.aclosing(stream):
                async for result in stream:
                    if result.data:
                        moved = result.data["referralUpdates"]
                        yield f"event: changed\ndata: {moved['id']}\n\n".encode()

        response = StreamingResponse(events(), media_type="text/event-stream")
        response.headers["X-Accel-Buffering"] = "no"
        return self._headers(response)

    async def move(self, request: Request, session: Session) -> Response:
        form = await request.form()
        name, fields = str(form.get("move", "")), {}
        if name == "reject":
            fields["reason"] = str(form.get("reason") or "OTHER")
        elif name == "put_on_hold":
            fields["reason"] = "waitlist"
        move = {to_camel_case(name): fields}
        variables = {"id": request.path_params["id"], "s": str(form.get("survivor", "")), "m": move}
        _answer, outcome = await self.command(request, session, operations.MOVE, variables)
        return await self.inbox(request, session, outcome)

    async def act(self, request: Request, session: Session) -> Response:
        form = await request.form()
        fields = {k: str(v) for k, v in form.items()}
        action = provider_action(fields.get("step", ""), request.path_params["id"], fields)
        if action is None:
            return self.render(request, session, "message.html", 400, message=i18n._("Unknown action."))
        _answer, outcome = await self.command(request, session, operations.ACT, {"a": action})
        return await self.inbox(request, session, outcome)

    async def organisation(self, request: Request, session: Session) -> Response:
        """An org admin's page: the shelter's beds or the clinic's caseload, the API keys, the webhook endpoints."""
        outcome, new_key = None, None
        if request.method == "POST":
            outcome, new_key = await self._organisation_change(request, session, await request.form())
        data, errors = await self.run(request, session, operations.WEBHOOKS)
        keys, _errors = await self.run(request, session, operations.KEYS)
        status = 200 if outcome is None or outcome["status"] == "APPLIED" else 422
        return self.render(request, session, "organisation.html", status, outcome=outcome, choices=CHOICES,
                           hooks=data.get("webhooks") or [], org_type=str(session.principal.org_type),
                           errors=errors, keys=keys.get("apiKeys") or [], new_key=new_key,
                           roles=[r.name for r in Role if r is not Role.OVERSIGHT],
                           deliverable=sorted(webhooks.DELIVERABLE))  # fmt: skip

    async def _organisation_change(
        self, request: Request, session: Session, form: Any
    ) -> tuple[dict[str, Any], str | None]:
        """One change from the organisation page: beds, caseload, a new key or a revoked one."""
        what = form.get("what")
        if what in ("key", "revoke_key", "webhook"):
            query, variables = {
                "key": (operations.CREATE_KEY, {"role": form.get("role"), "label": form.get("label") or None}),
                "revoke_key": (operations.REVOKE_KEY, {"id": form.get("key_id")}),
                "webhook": (operations.REGISTER_WEBHOOK, {"url": form.get("url"), "events": form.getlist("events")}),
            }[what]
            data, errors = await self.run(request, session, query, variables)
            if errors:
                return _refused(errors), None
            made = data.get("createApiKey") or {}
            registered = data.get("registerWebhook") or {}
            return {"status": "APPLIED"}, made.get("key") or registered.get("secret")
        counts = {k: str(v).strip() for k, v in form.items() if k in (*CHOICES["units"], "caseload")}
        if not all(v.isdigit() for v in counts.values() if v):
            return {"status": "ERROR", "code": "BAD_INPUT", "message": i18n._("Give whole numbers.")}, None
        if what == "beds":
            beds = [{"unitType": u, "count": int(v)} for u, v in counts.items() if u != "caseload" and v]
            action: dict[str, Any] = {"configureShelter": {"beds": beds}}
        else:
            action = {"configureClinic": {"maxOpenMatters": int(counts.get("caseload") or 0)}}
        _answer, outcome = await self.command(request, session, operations.ACT, {"a": action})
        return outcome, None

    async def audit(self, request: Request, session: Session) -> Response:
        """Auditors and oversight bodies: a survivor's ledger as their role allows, and the chain's integrity."""
        survivor = request.query_params.get("survivor", "").strip()
        reads: list[Any] = []
        errors: list[dict[str, Any]] = []
        if survivor:
            data, errors = await self.run(request, session, operations.LEDGER, {"id": survivor})
            reads = data.get("accessLedger") or []
        chain = None
        if session.principal.role == Role.OVERSIGHT:
            data, _errors = await self.run(request, session, operations.AUDIT_CHAIN)
            chain = data.get("auditChain")
        return self.render(request, session, "audit.html", reads=reads, errors=errors, survivor=survivor,
                           chain=chain)  # fmt: skip

    async def statistics(self, request: Request, session: Session) -> Response:
        """Oversight bodies and organisation admins: ask for a release, and read the releases of their scope."""
        form = await request.form() if request.method == "POST" else request.query_params
        chosen = {k: str(form.get(k) or "") for k in ("first", "second", "need")}
        chosen["period"] = str(form.get("period") or datetime.now(UTC).strftime("%Y-%m"))
        outcome, status = None, 200
        if request.method == "POST":
            variables = {"d": [d for d in (chosen["first"], chosen["second"]) if d], "p": chosen["period"],
                         "n": chosen["need"] or None}  # fmt: skip
            _answer, outcome = await self.command(request, session, operations.RELEASE, variables)
            status = 200 if outcome["status"] == "APPLIED" else 422
        data, errors = await self.run(request, session, operations.RELEASES, {"period": None})
        releases = [crosstab(r) for r in data.get("statisticsReleases") or []]
        return self.render(request, session, "statistics.html", status, releases=releases, errors=errors,
                           outcome=outcome, chosen=chosen, dimensions=[d.name for d in Dimension],
                           needs=[t.name for t in ReferralType])  # fmt: skip

    async def statistics_csv(self, request: Request, session: Session) -> Response:
        return await export(self.pool, session.principal, request.path_params["id"])

    async def outcomes(self, request: Request, session: Session) -> Response:
        """How organisations answer referrals: every one to an oversight body, its own to an organisation admin."""
        period = request.query_params.get("period") or datetime.now(UTC).strftime("%Y-%m")
        data, errors = await self.run(request, session, operations.OUTCOMES, {"p": period})
        return self.render(request, session, "outcomes.html", 200 if not errors else 422, period=period,
                           rows=data.get("outcomeMonitoring") or [], errors=errors)  # fmt: skip

    async def pathway(self, request: Request, session: Session) -> Response:
        survivor = request.path_params["id"]
        data, errors = await self.run(request, session, operations.PATHWAY, {"id": survivor})
        hidden = {str(e["path"][-1]): e.get("category", "") for e in errors if e.get("code") == "CONSENT_REQUIRED"}
        refused = [e for e in errors if e.get("code") != "CONSENT_REQUIRED"]
        shown = data.get("survivor")
        status = 200 if shown else 404
        return self.render(request, session, "pathway.html", status, survivor=shown, survivor_id=survivor,
                           hidden=hidden, refused=refused)  # fmt: skip

    async def ledger(self, request: Request, session: Session) -> Response:
        survivor = request.path_params["id"]
        data, errors = await self.run(request, session, operations.LEDGER, {"id": survivor})
        reads = data.get("accessLedger") or []
        return self.render(request, session, "ledger.html", 200 if not errors else 403, reads=reads,
                           survivor_id=survivor, errors=errors)  # fmt: skip

    async def screen(self, request: Request, session: Session) -> Response:
        choices = {"acts": Act, "means": Means, "purposes": ExploitationPurpose, "sectors": Sector,
                   "age_bands": AgeBand, "genders": Gender, "outcomes": ScreeningOutcome}  # fmt: skip
        options = {k: [m.name for m in v] for k, v in choices.items()}
        if request.method == "GET":
            return self.render(request, session, "screen.html", options=options, outcome=None,
                               idempotency=str(uuid4()), form={})  # fmt: skip
        form = await request.form()
        values = {k: form.getlist(k) if k in ("acts", "means", "purposes") else str(form.get(k, "")) for k in form}
        screening = _screening(values, session.principal)
        answer, outcome = await self.command(request, session, operations.SCREEN, {"s": screening})
        if outcome["status"] == "APPLIED":
            return self._headers(RedirectResponse(f"/console/survivors/{answer['subjectId']}/consent", 303))
        return self.render(request, session, "screen.html", 422, options=options, outcome=outcome,
                           idempotency=str(form.get("idempotency", uuid4())), form=values)  # fmt: skip

    async def _consent_page(self, request: Request, session: Session) -> dict[str, Any]:
        survivor = request.path_params["id"]
        data, _errors = await self.run(request, session, operations.DIRECTORY)
        orgs = [o for o in data.get("directory") or [] if o["orgId"] != session.principal.org_id]
        given, _errors = await self.run(request, session, operations.CONSENTS, {"id": survivor})
        return {"survivor_id": survivor, "orgs": orgs, "categories": [c.name for c in Category],
                "purposes": [p.name for p in Purpose], "methods": [m.name for m in ConsentMethod],
                "bases": [b.name for b in Basis], "directives": given.get("consents") or [],
                # A form sent again (a lost answer, a reload) is the same grant: Haven records it once.
                "idempotency": str(uuid4()), "since": datetime.now(UTC).isoformat()}  # fmt: skip

    async def revoke(self, request: Request, session: Session) -> Response:
        form = await request.form()
        variables = {"id": request.path_params["id"], "d": str(form.get("directive", ""))}
        _answer, outcome = await self.command(request, session, operations.REVOKE, variables)
        page = await self._consent_page(request, session)
        return self.render(request, session, "consent.html", 200 if outcome["status"] == "APPLIED" else 422,
                           outcome=outcome, **page)  # fmt: skip

    async def consent(self, request: Request, session: Session) -> Response:
        survivor = request.path_params["id"]
        if request.method == "GET":
            page = await self._consent_page(request, session)
            return self.render(request, session, "consent.html", outcome=None, **page)
        form = await request.form()
        until = date.fromisoformat(str(form.get("until") or (date.today() + timedelta(days=90)).isoformat()))
        directive: dict[str, Any] = {
            "grantee": {"orgId": str(form.get("grantee"))},
            "categories": form.getlist("categories"),
            "purposes": form.getlist("purposes") or ["SERVICE_DELIVERY"],
            "validFrom": str(form.get("since") or datetime.now(UTC).isoformat()),
            "validUntil": datetime.combine(until, datetime.max.time(), UTC).isoformat(),
            "basis": str(form.get("basis") or "CONSENT"),
            "obtained": {"method": str(form.get("method") or "VERBAL_WITNESSED"),
                         "language": str(form.get("language") or "en"), "interpreter": form.get("interpreter") == "on"},
        }  # fmt: skip
        directive.update(_borders(str(form.get("borders") or "home"), str(form.get("jurisdictions", ""))))
        if form.get("justification"):
            directive["justification"] = str(form.get("justification"))
        if approvers := [a.strip() for a in str(form.get("approvers", "")).split(",") if a.strip()]:
            directive["approvers"] = approvers
        variables = {"id": survivor, "d": directive, "k": str(form.get("idempotency") or uuid4())}
        _answer, outcome = await self.command(request, session, operations.GRANT, variables)
        page = await self._consent_page(request, session)
        return self.render(request, session, "consent.html", 200 if outcome["status"] == "APPLIED" else 422,
                           outcome=outcome, **page)  # fmt: skip

    async def refer(self, request: Request, session: Session) -> Response:
        survivor = request.path_params["id"]
        form = await request.form() if request.method == "POST" else request.query_params
        service = str(form.get("service") or ReferralType.EMERGENCY_SHELTER.name)
        data, _errors = await self.run(request, session, operations.PROVIDERS, {"service": service})
        page = {"survivor_id": survivor, "service": service, "services": [t.name for t in ReferralType],
                "urgencies": [u.name for u in Urgency], "providers": data.get("providers") or [],
                "idempotency": str(uuid4())}  # fmt: skip
        if request.method == "GET":
            return self.render(request, session, "refer.html", outcome=None, **page)
        referral = {"survivorId": survivor, "recipientOrg": str(form.get("recipient")), "referralType": service,
                    "urgency": str(form.get("urgency") or "URGENT")}  # fmt: skip
        if form.get("note"):
            referral["note"] = str(form.get("note"))
        variables = {"r": referral, "k": str(form.get("idempotency") or uuid4())}
        _answer, outcome = await self.command(request, session, operations.REFER, variables)
        return self.render(request, session, "refer.html", 200 if outcome["status"] == "APPLIED" else 422,
                           outcome=outcome, **page)  # fmt: skip


CHOICES = {name: [m.name for m in vocabulary] for name, vocabulary in (
    ("units", UnitType), ("destinations", Destination), ("matter_types", MatterType), ("milestones", Milestone),
    ("matter_outcomes", MatterOutcome), ("health_services", HealthService), ("programs", ProgramType),
    ("wage_bands", WageBand),
)}  # fmt: skip
CHOICES["discharges"] = ["TREATMENT_COMPLETED", "REFERRED_ELSEWHERE", "DISENGAGED"]  # coded outcomes of care


def provider_action(step: str, referral_id: str, form: dict[str, str]) -> dict[str, Any] | None:
    """A provider's step on a referral as a ``ProviderActionInput``. The console names a matter and an enrolment
    by the referral's own id (one of each per referral), so later steps need nothing but the referral."""
    base = {"referralId": referral_id, "survivorId": form.get("survivor", "")}
    matter = {"matterId": referral_id, "survivorId": base["survivorId"]}
    enrolment = {"enrolmentId": referral_id, "survivorId": base["survivorId"]}
    actions: dict[str, dict[str, Any]] = {
        "accept": {"acceptPlacement": {**base, "unitType": form.get("unit") or "ADULT_WOMEN"}},
        "check_in": {"checkIn": base},
        "check_out": {"checkOut": {**base, "destination": form.get("destination") or "UNKNOWN"}},
        "open_matter": {"openMatter": {**base, "matterId": referral_id, "matterType": form.get("matter_type")}},
        "milestone": {"recordMilestone": {**matter, "milestone": form.get("milestone"),
                                          "hearingDate": form.get("hearing_date") or None}},
        "close_matter": {"closeMatter": {**matter, "outcome": form.get("outcome")}},
        "engage": {"recordEngagement": {**base, "service": form.get("service"), "engaged": True}},
        "discharge": {"dischargeFromCare": {**base, "outcome": (form.get("outcome") or "").lower()}},
        "enrol": {"enrol": {**base, "enrolmentId": referral_id, "programType": form.get("program")}},
        "work_outcome": {"recordEmploymentOutcome": {
            **enrolment, "employed": form.get("employed") == "on", "wageBand": form.get("wage_band") or None,
            "retained3Months": _known(form.get("retained_3")), "retained6Months": _known(form.get("retained_6")),
        }},
    }  # fmt: skip
    return actions.get(step)


def _page_of(request: Request) -> str:
    """The page a form answered on (a language change reloads it): the inbox for a referral's action, the
    consent page for a revocation, else the page itself."""
    path = request.url.path
    if request.method == "GET":
        return path
    if path.startswith("/console/referrals/"):
        return "/console/inbox"
    return path.removesuffix("/revoke")


def _borders(choice: str, named: str) -> dict[str, Any]:
    """The consent form's "across borders" choice as directive fields: the survivor's own jurisdiction only (the
    default), also the named ones, or any.

    >>> _borders("named", "fr, de"), _borders("any", ""), _borders("home", "FR")
    ({'crossBorder': ['FR', 'DE']}, {'anyJurisdiction': True}, {})
    """
    if choice == "any":
        return {"anyJurisdiction": True}
    if choice == "named":
        return {"crossBorder": [code.strip().upper() for code in named.split(",") if code.strip()]}
    return {}


ALL = "*"


def crosstab(release: dict[str, Any]) -> dict[str, Any]:
    """A release as the page lays it out: the first dimension's values down, the second's across (or one column),
    each ending with its total; a figure is None where it was suppressed."""
    dims = release["dimensions"]
    values: list[list[str]] = [[], []]
    figures: dict[tuple[str, str], int | None] = {}
    for cell in release["cells"]:
        fixed = {v["dimension"]: v["value"] for v in cell["values"]}
        at = tuple(fixed.get(d, ALL) for d in dims) + (ALL,) * (2 - len(dims))
        for axis, value in enumerate(at):
            if value != ALL and value not in values[axis]:
                values[axis].append(value)
        figures[(at[0], at[1])] = cell["count"]
    rows, columns = [*sorted(values[0]), ALL], [*sorted(values[1]), ALL] if len(dims) == 2 else [ALL]
    return {**release, "rows": rows, "columns": columns, "figures": figures, "all": ALL}


def _known(answer: str | None) -> bool | None:
    """A yes/no question that may not have an answer yet."""
    return {"yes": True, "no": False}.get(answer or "")


def _refused(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """A command the API answered with an error, as the outcome the pages show (its code and message)."""
    first = errors[0]
    return {"status": "ERROR", "code": first.get("code"), "message": first["message"], "field": first.get("field")}


SCREENER_TYPE = {"hotline": "HOTLINE", "ngo": "NGO", "health_provider": "HEALTH_WORKER",
                 "labour_inspectorate": "LABOUR_INSPECTOR", "border_agency": "BORDER_OFFICIAL",
                 "law_enforcement": "POLICE"}  # fmt: skip
"""Who screens, by the kind of organisation signed in."""


def _screening(values: dict[str, Any], who: Principal) -> dict[str, Any]:
    """The screening form as ``ScreeningInput`` variables (empty fields left out: the contract has defaults)."""
    identity = {"givenName": values.get("given_name", ""), "familyName": values.get("family_name") or None,
                "dateOfBirth": values.get("date_of_birth") or None}  # fmt: skip
    contact = {"phone": values.get("phone") or None, "safeContactInstructions": values.get("safe_contact") or None}
    return {
        "idempotencyKey": values.get("idempotency") or str(uuid4()),
        "screenerType": SCREENER_TYPE.get(who.org_type, "NGO"),
        "outcome": values.get("outcome") or "PROBABLE_VICTIM",
        "decidedBy": who.org_id,
        "decidedByRole": "SCREENER",
        "presumedMinor": values.get("presumed_minor") == "on",
        "statistics": {"ageBand": values.get("age_band") or "UNKNOWN", "gender": values.get("gender") or "UNDISCLOSED"},
        "identity": {k: v for k, v in identity.items() if v is not None},
        "contact": {k: v for k, v in contact.items() if v is not None},
        "narrative": {
            "acts": values.get("acts") or [],
            "means": values.get("means") or [],
            "purposes": values.get("purposes") or [],
            "sector": values.get("sector") or "OTHER",
            "story": values.get("story") or None,
        },
    }

"""``make chaos``: the whole platform under load and faults, then checked from the outside, in the terms Kafka's
system tests and Jepsen's Kafka workload use: messages in, out, lost, duplicated; faults injected; recovery times.

On a fresh stack of its own (like ``make bench``), one process per service as the chart deploys them, with two
instances of each provider service (so rebalances happen), it drives closed-loop referrals through GraphQL from
several shelters at once — screening, consent, referral, acceptance, check-in, check-out — and meanwhile:

- SIGKILLs a random Haven process (the gateway included) every ``--kill-every`` seconds; the launcher restarts it;
- restarts the Kafka broker once and PostgreSQL once (stop, wait, start);
- puts poison on every command topic — 1 % of the commands sent, bad JSON, an unknown type or a schema-invalid
  payload — and sends commands that break domain rules (a second acceptance, an acceptance after a cancellation,
  a placement with no free bed);
- revokes consent for some survivors and erases some others.

Then it waits for every outbox to drain and every consumer group to reach the end of its topics, and checks what
each promise says, from the topics (each partition read to its end offset) and the databases:

- every referral whose acceptance the generator was told of is completed (input set = output set);
- no duplicated effect: no bed or referral with two placements, no transition recorded twice (by the referrals
  service or the gateway's read model), no command answered with two different outcomes, no grant or referral
  recorded twice for a partner that sent it again with its idempotency key;
- every poison message is in its ``.dlq`` with a reason, and every refused command's refusal reached its caller;
- after revocation no read returns the revoked categories; after erasure nothing opens;
- the audit chain verifies;
- each fault's recovery time (every process ready again, and referrals completing again).

It writes ``chaos/results/latest.json`` and a timeline plot, prints a summary, and exits non-zero when anything is
lost, duplicated, leaked or unrecovered. ``--smoke`` (``make chaos-smoke``, part of ``make test``) is the short run:
one fault of each kind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiohttp
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from bench.pipeline import Stack, probe_port, screening, start, stop
from bench.progress import progress
from events.base import REGISTRY
from events.catalog import OUTCOMES, dlq_name
from events.envelope import Envelope, to_kafka
from events.identification import EraseSurvivor, ErasureReason
from infra import stack as infra
from services.kernel import kafka
from services.kernel.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "chaos" / "results"
TWICE = "shelter=2,legal_aid=2,health=2,employment=2"
"""Two instances of each provider service: a killed one's partitions move to the other (a rebalance)."""

WAIT = 10000  # ms a mutation waits for the owning service's decision


def _waiting(operation: str, selection: str) -> str:
    """A mutation that waits up to ``WAIT`` ms for the owning service's decision, and asks for it."""
    return f"mutation{operation[:-1]}, wait: {WAIT}) {{ {selection} outcome {{ status code }} }} }}"


RECORD = _waiting("($s: ScreeningInput!) { recordScreening(screening: $s)", "subjectId commandId")
GRANT = _waiting("($s: ID!, $d: DirectiveInput!, $k: String) { grantConsent(survivorId: $s, directive: $d, "
                 "idempotencyKey: $k)", "subjectId commandId")  # fmt: skip
REQUEST = _waiting("($r: ReferralInput!, $k: String) { requestReferral(referral: $r, idempotencyKey: $k)",
                   "referralId commandId")  # fmt: skip
ACT = _waiting("($a: ProviderActionInput!) { providerAction(action: $a)", "commandId")
MOVE = _waiting("($r: ID!, $s: ID!, $m: ReferralMoveInput!) { moveReferral(referralId: $r, survivorId: $s, move: $m)",
                "commandId")  # fmt: skip
REVOKE = _waiting("($s: ID!, $d: ID!) { revokeConsent(survivorId: $s, directiveId: $d)", "commandId")
COMMAND = "query($id: ID!) { command(id: $id) { status code } }"
CONSENTS = "query($s: ID!) { consents(survivorId: $s) { id granteeOrgId } }"
READ = "query($s: ID!) { survivor(id: $s, purpose: SERVICE_DELIVERY) { identity { givenName } contact { phone } } }"

TRANSIENT = frozenset({"UNKNOWN_REFERRAL", "INTERNAL_SERVER_ERROR", "UNAVAILABLE", "INTERNAL", "AUDIT_UNAVAILABLE"})
"""Gateway errors a partner retries: the database was away (nothing was sent; a read that cannot be audited is
refused), or the read model has not caught up."""


class Refused(Exception):
    """The gateway refused the call itself (a GraphQL error with a code)."""

    def __init__(self, code: str, message: str, reason: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.reason = reason  # the owning service's code, when the gateway refused first on its behalf


class Unanswered(Exception):
    """The call may or may not have been carried out: the connection went away before the answer."""


@dataclass
class Fault:
    kind: str
    target: str
    at: float
    ready_s: float | None = None
    resumed_s: float | None = None
    process: str | None = None  # a kill's process, whose own readiness is timed


@dataclass
class Ledger:
    """What the load generator did and was told, and what the fault injector did."""

    began: float = field(default_factory=time.monotonic)
    commands: int = 0
    told_accepted: dict[UUID, UUID] = field(default_factory=dict)  # referral → survivor
    completed: list[float] = field(default_factory=list)  # when each closed loop finished (monotonic)
    abandoned: Counter[str] = field(default_factory=Counter)
    undecided: list[str] = field(default_factory=list)
    reads: int = 0  # commands never answered APPLIED or REFUSED
    retried: Counter[str] = field(default_factory=Counter)
    poison: dict[str, tuple[str, str]] = field(default_factory=dict)  # ce_id → (topic, kind)
    refusals: list[dict[str, Any]] = field(default_factory=list)  # each rule-breaking command and its answer
    revoked: list[tuple[UUID, str]] = field(default_factory=list)  # (survivor, the shelter's key)
    erased: list[tuple[UUID, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def now(self) -> float:
        return round(time.monotonic() - self.began, 2)


class Partner:
    """Calls the gateway as a partner system would: a call that never reached it is sent again; one whose answer
    was lost is reported as such; a command still pending when the wait ends is asked about until it is decided."""

    def __init__(self, stack: Stack, session: aiohttp.ClientSession, ledger: Ledger) -> None:
        self.stack, self.session, self.ledger = stack, session, ledger

    async def call(self, key: str, query: str, variables: dict[str, Any], *, patience: float = 240) -> Any:
        deadline = time.monotonic() + patience
        while True:
            try:
                async with self.session.post(
                    self.stack.url, json={"query": query, "variables": variables},
                    headers={"Authorization": f"Bearer {key}"}, timeout=aiohttp.ClientTimeout(total=30),
                ) as answer:  # fmt: skip
                    body = await answer.json(content_type=None) if answer.status < 500 else None
            except aiohttp.ClientConnectorError:
                body = None  # the gateway is down: nothing was sent
            except (aiohttp.ClientError, TimeoutError) as lost:
                raise Unanswered(type(lost).__name__) from None
            if body is not None and not body.get("errors"):
                return body["data"]
            extensions = (body["errors"][0].get("extensions") or {}) if body else {}
            code = extensions.get("code", "") if body else "UNAVAILABLE"
            if code not in TRANSIENT or time.monotonic() > deadline:
                raise Refused(code, body["errors"][0]["message"] if body else "no answer", extensions.get("reason"))
            self.ledger.retried[code] += 1
            await asyncio.sleep(0.5)

    async def read(self, key: str, query: str, variables: dict[str, Any], *, tries: int = 5) -> Any:
        """A query, asked again when its answer is lost (a read changes nothing)."""
        for _ in range(tries - 1):
            try:
                return await self.call(key, query, variables)
            except Unanswered:
                self.ledger.retried["answer lost"] += 1
                await asyncio.sleep(1)
        return await self.call(key, query, variables)

    async def command(self, key: str, query: str, variables: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
        """Send a command and wait for its decision: (the answer, APPLIED or REFUSED, the refusal's code)."""
        self.ledger.commands += 1
        data = next(iter((await self.call(key, query, variables)).values()))
        status, code = data["outcome"]["status"], data["outcome"].get("code") or ""
        deadline = time.monotonic() + 300
        while status == "PENDING" and time.monotonic() < deadline:
            await asyncio.sleep(1)
            asked = (await self.call(key, COMMAND, {"id": data["commandId"]}))["command"]
            status, code = asked["status"], asked.get("code") or ""
        if status == "PENDING":
            self.ledger.undecided.append(data["commandId"])
        return data, status, code

    async def breaking(self, rule: str, key: str, query: str, variables: dict[str, Any]) -> None:
        """A command that breaks ``rule``: its refusal must reach the caller, from the service (REFUSED) or from the
        gateway refusing first on the service's behalf (an error whose reason is the service's code)."""
        try:
            _, status, code = await self.command(key, query, variables)
        except Refused as refused:
            status, code = ("REFUSED" if refused.reason else refused.code), refused.reason or ""
        self.ledger.refusals.append({"rule": rule, "status": status, "code": code})

    async def decided(self, key: str, query: str, variables: dict[str, Any], *, tries: int = 5) -> dict[str, Any]:
        """A command that must be applied: sent again when its answer is lost; raises ``Refused`` otherwise."""
        for _ in range(tries):
            try:
                data, status, code = await self.command(key, query, variables)
            except Unanswered:
                self.ledger.retried["answer lost"] += 1
                await asyncio.sleep(1)
                continue
            if status == "APPLIED":
                return data
            raise Refused(code or status, f"{status} {code}")
        raise Refused("unanswered", f"no answer in {tries} tries")

    async def advance(
        self, key: str, action: dict[str, Any], referral: UUID, reached: set[str], *, confirm: bool = False
    ) -> None:
        """A provider action that moves ``referral`` into one of ``reached``. When the answer is lost, or the action
        is refused because an attempt whose answer was lost has already moved it, the referral's state says so.
        With ``confirm``, APPLIED (the provider's part) is not enough: the referral must be seen in ``reached``
        (the referrals service's part), as before revoking consent for a survivor whose stay just ended."""
        for _ in range(5):
            try:
                _, status, code = await self.command(key, ACT, {"a": action})
                if status == "APPLIED" and not confirm:
                    return
            except Unanswered:
                self.ledger.retried["answer lost"] += 1
                status, code = "UNANSWERED", ""
            except Refused as refused:  # the gateway refused first, on the service's behalf (not_awaiting_answer …)
                if not refused.reason:
                    raise
                status, code = "REFUSED", refused.reason
            for _ in range(240 if status == "APPLIED" else 20):  # the partner's view of its referral, a moment later
                if await self.status_of(referral) in reached:
                    return
                await asyncio.sleep(0.5)
            if status == "REFUSED":
                raise Refused(code, f"{next(iter(action))} refused")
        raise Refused("unanswered", f"{next(iter(action))}: no answer in 5 tries")

    async def seen(self, referral: UUID, *, patience: float = 120) -> None:
        """Until ``referral`` is in the recipient's view (the gateway's read model)."""
        deadline = time.monotonic() + patience
        while await self.status_of(referral) is None:
            if time.monotonic() > deadline:
                raise Refused("never_seen", f"referral {referral} did not reach its recipient's inbox")
            await asyncio.sleep(0.2)

    async def status_of(self, referral: UUID) -> str | None:
        with contextlib.suppress(Exception):  # the database may be restarting
            status: str | None = await self.stack.pool.fetchval(
                "SELECT status FROM gateway.referrals WHERE referral_id = $1", referral
            )
            return status
        return None


@dataclass
class Plan:
    referrals: int
    workers: int
    kill_every: float
    kills: int | None  # at most this many (None: until the load ends)
    seed: int


async def closed_loop(partner: Partner, n: int) -> None:
    """One referral from screening to check-out; every 50th also breaks a rule, every 40th is revoked or erased.

    A step whose answer was lost is sent again (a screening with the same idempotency key); a provider step first
    looks at the referral (as the partner would, in its referrals) in case the lost attempt was carried out."""
    stack, ledger = partner.stack, partner.ledger
    shelter, key = stack.shelters[n % len(stack.shelters)]
    step = "screening"
    try:
        data = await partner.decided(stack.intake, RECORD, {"s": screening()})
        survivor = UUID(data["subjectId"])
        step = "consent"
        now = datetime.now(UTC)
        directive = {"grantee": {"orgId": shelter}, "categories": ["IDENTITY", "CONTACT", "CASE_STATUS"],
                     "purposes": ["SERVICE_DELIVERY"], "validFrom": (now - timedelta(minutes=1)).isoformat(),
                     "validUntil": (now + timedelta(days=30)).isoformat(),
                     "obtained": {"method": "WRITTEN", "language": "tl", "interpreter": True}}  # fmt: skip
        await partner.decided(stack.intake, GRANT, {"s": str(survivor), "d": directive, "k": str(uuid4())})
        step = "referral"
        ask = {"survivorId": str(survivor), "recipientOrg": shelter, "referralType": "EMERGENCY_SHELTER",
               "urgency": "EMERGENCY"}  # fmt: skip
        referral = UUID((await partner.decided(stack.intake, REQUEST, {"r": ask, "k": str(uuid4())}))["referralId"])
        about = {"referralId": str(referral), "survivorId": str(survivor)}
        accept = {"acceptPlacement": {**about, "unitType": "ADULT_WOMEN"}}
        step = "acceptance"
        await partner.seen(referral)  # in the shelter's inbox: what a shelter's system acts on
        await partner.advance(key, accept, referral, {"accepted", "in_progress", "completed"})
        ledger.told_accepted[referral] = survivor
        if n % 50 == 7:  # a second acceptance: refused, and the caller told so (a lost answer proves nothing)
            with contextlib.suppress(Unanswered):
                await partner.breaking("second acceptance", key, ACT, {"a": accept})
        step = "check-in"
        await partner.advance(key, {"checkIn": about}, referral, {"in_progress", "completed"})
        with contextlib.suppress(Unanswered, Refused):  # the caseworker reads who is arriving (audited)
            await partner.call(key, READ, {"s": str(survivor)})
            ledger.reads += 1
        step = "check-out"
        await partner.advance(key, {"checkOut": {**about, "destination": "TRANSITIONAL_HOUSING"}}, referral,
                              {"completed"}, confirm=True)  # fmt: skip
        ledger.completed.append(time.monotonic())
        if n % 50 == 32:
            await accept_after_cancel(partner, survivor, shelter, key)
        if n % 40 == 11:
            step = "revocation"
            directives = (await partner.read(stack.intake, CONSENTS, {"s": str(survivor)}))["consents"]
            # The one directive to the shelter (a grant sent again with its idempotency key is recorded once).
            directive_id = next(d["id"] for d in directives if d["granteeOrgId"] == shelter)
            await partner.decided(stack.intake, REVOKE, {"s": str(survivor), "d": directive_id})
            ledger.revoked.append((survivor, key))
        elif n % 40 == 31:
            await erase(partner, survivor)
            ledger.erased.append((survivor, key))
    except Refused as refused:
        ledger.abandoned[f"{step}: {refused.code}"] += 1


async def accept_after_cancel(partner: Partner, survivor: UUID, shelter: str, key: str) -> None:
    """A referral the referrer cancelled, then accepted by the shelter: refused, and the shelter told so."""
    stack = partner.stack
    ask = {"survivorId": str(survivor), "recipientOrg": shelter, "referralType": "EMERGENCY_SHELTER",
           "urgency": "EMERGENCY"}  # fmt: skip
    with contextlib.suppress(Unanswered, Refused):  # a lost answer leaves nothing to check: the rule is tried again
        referral = (await partner.decided(stack.intake, REQUEST, {"r": ask, "k": str(uuid4())}))["referralId"]
        cancel = {"r": referral, "s": str(survivor), "m": {"cancel": {"reason": "BY_REFERRER"}}}
        await partner.decided(stack.tiny[2], MOVE, cancel)  # a caseworker of the referrer cancels
        about = {"referralId": referral, "survivorId": str(survivor), "unitType": "ADULT_WOMEN"}
        await partner.breaking("acceptance after cancellation", key, ACT, {"a": {"acceptPlacement": about}})


async def erase(partner: Partner, survivor: UUID) -> None:
    """Erasure is an operator's command, sent on Kafka as the identification service's operators do (again, until
    Kafka takes it: the broker may be restarting)."""
    command = EraseSurvivor(survivor_id=survivor, requested_by=partner.stack.intake_org,
                            reason=ErasureReason.SURVIVOR_REQUEST)  # fmt: skip
    record = to_kafka(Envelope.new(command, source="chaos"))
    for _ in range(30):
        producer = kafka.producer(partner.stack.settings)
        try:
            await producer.start()
            await asyncio.wait_for(producer.send_and_wait(record.topic, record.value, key=record.key,
                                                          headers=record.headers), 30)  # fmt: skip
            return
        except Exception:  # any failure to reach the broker: try again
            await asyncio.sleep(2)
        finally:
            await producer.stop()
    raise Refused("erasure_not_sent", "Kafka did not take the erasure")


async def no_free_bed(partner: Partner) -> None:
    """``bed_not_free``, tried again when an answer is lost to a fault (it proves nothing then)."""
    for _ in range(5):
        with contextlib.suppress(Unanswered, Refused):
            await bed_not_free(partner)
            return
        await asyncio.sleep(5)


async def bed_not_free(partner: Partner) -> None:
    """A shelter with one bed, two referrals accepted: the second cannot have the bed and is rejected for no
    capacity at once (its answer is the rejection, which the referrer and the shelter both see)."""
    stack = partner.stack
    shelter, key, _ = stack.tiny
    ids = []
    for _ in range(2):
        survivor = (await partner.decided(stack.intake, RECORD, {"s": screening()}))["subjectId"]
        now = datetime.now(UTC)
        directive = {"grantee": {"orgId": shelter}, "categories": ["CASE_STATUS"], "purposes": ["SERVICE_DELIVERY"],
                     "validFrom": (now - timedelta(minutes=1)).isoformat(),
                     "validUntil": (now + timedelta(days=30)).isoformat(),
                     "obtained": {"method": "WRITTEN", "language": "tl", "interpreter": True}}  # fmt: skip
        await partner.decided(stack.intake, GRANT, {"s": survivor, "d": directive, "k": str(uuid4())})
        ask = {"survivorId": survivor, "recipientOrg": shelter, "referralType": "EMERGENCY_SHELTER",
               "urgency": "EMERGENCY"}  # fmt: skip
        made = await partner.decided(stack.intake, REQUEST, {"r": ask, "k": str(uuid4())})
        ids.append((made["referralId"], survivor))
    answers = []
    for referral, survivor in ids:
        about = {"referralId": referral, "survivorId": survivor, "unitType": "ADULT_WOMEN"}
        answers.append((referral, (await partner.command(key, ACT, {"a": {"acceptPlacement": about}}))[1]))
    partner.ledger.refusals.append({"rule": "no free bed", "status": answers[1][1], "referral": answers[1][0],
                                    "first": answers[0][0]})  # fmt: skip


def command_topics() -> dict[str, str]:
    """Each command topic and a command type it carries (poison of a real type must fail on its payload)."""
    found: dict[str, str] = {}
    for event_type, model in REGISTRY.contract_types().items():
        if model.topic.endswith(".commands"):
            found.setdefault(model.topic, event_type)
    return dict(sorted(found.items()))


POISON_KINDS = ("bad_json", "unknown_type", "schema_invalid")


async def poison(settings: Settings, ledger: Ledger, stop: asyncio.Event, *, share: float = 0.01) -> None:
    """Keep the poison at ``share`` of the commands the generator has sent, spread over every command topic and
    kind. A message counts once Kafka has acknowledged it (one sent while the broker restarts may not be)."""
    topics = list(command_topics().items())
    producer = kafka.producer(settings)
    await producer.start()
    n = 0
    try:
        while not stop.is_set():
            due = int(ledger.commands * share) + 1 - len(ledger.poison)
            for _ in range(max(due, 0)):
                topic, real_type = topics[n % len(topics)]
                kind = POISON_KINDS[(n // len(topics)) % len(POISON_KINDS)]
                n += 1
                marker = str(uuid4())
                value = {"bad_json": b'{"survivor_id": "', "unknown_type": b"{}", "schema_invalid": b'{"x": 1}'}[kind]
                headers = [("ce_specversion", "1.0"), ("ce_id", marker), ("ce_source", "chaos"),
                           ("ce_type", "chaos.no_such_command" if kind == "unknown_type" else real_type),
                           ("ce_time", datetime.now(UTC).isoformat()), ("ce_subject", marker),
                           ("content-type", "application/json")]  # fmt: skip
                with contextlib.suppress(Exception):  # the broker may be restarting: not sent, not counted
                    encoded = [(k, v.encode()) for k, v in headers]
                    await asyncio.wait_for(
                        producer.send_and_wait(topic, value, key=marker.encode(), headers=encoded), 20
                    )
                    ledger.poison[marker] = (topic, kind)
            await asyncio.sleep(1)
    finally:
        await producer.stop()


async def probe(settings: Settings, port: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(
            f"http://{settings.health_host}:{port}/readyz", timeout=aiohttp.ClientTimeout(total=2)
        ) as answer:  # fmt: skip
            return answer.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def all_ready(stack: Stack, only: str | None = None) -> bool:
    """Every process answers ready (or only the one named)."""
    pids = [pid for name, pid in stack.processes().items() if only in (None, name)]
    ports = [p for p in (probe_port(pid) for pid in pids) if p]
    return bool(ports) and all(await asyncio.gather(*(probe(stack.settings, p) for p in ports)))


async def recovered(
    stack: Stack, ledger: Ledger, fault: Fault, load_over: asyncio.Event, *, after: float = 1.0
) -> None:
    """Time from the fault to the process killed (or, after a restart of Kafka or PostgreSQL, every process)
    answering ready again, then to the next closed loop completing. A process killed again soon after its restart
    waits out the launcher's backoff (doubling from 1 s while it keeps dying within a minute of starting). A fault
    in the load's last seconds may see no loop complete after it: once the load is over, ready is enough."""
    await asyncio.sleep(after)
    began = ledger.began + fault.at
    done_before = len(ledger.completed)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if fault.ready_s is None and await all_ready(stack, fault.process):
            fault.ready_s = round(time.monotonic() - began, 2)
        if fault.ready_s is not None and len(ledger.completed) > done_before:
            fault.resumed_s = round(ledger.completed[-1] - began, 2)
            return
        if fault.ready_s is not None and load_over.is_set():
            return
        await asyncio.sleep(0.25)


async def faults(stack: Stack, ledger: Ledger, plan: Plan, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """SIGKILL a random Haven process every ``kill_every`` s; restart Kafka at 30 % of the referrals, PostgreSQL at
    60 %."""
    rng = random.Random(plan.seed)
    watchers: list[asyncio.Task[None]] = []
    settings = stack.settings
    libs = infra.kafka_runtime(settings)
    infra_faults = [(0.3, "kafka restart"), (0.6, "postgresql restart")]
    next_kill = time.monotonic() + plan.kill_every / 2
    kills = 0
    while not stop.is_set():
        await asyncio.sleep(0.25)
        done = len(ledger.completed) / plan.referrals
        if infra_faults and done >= infra_faults[0][0]:
            _, kind = infra_faults.pop(0)
            fault = Fault(kind, kind.split()[0], ledger.now())
            ledger.faults.append(fault)
            if kind.startswith("kafka"):
                await asyncio.to_thread(infra.stop_pid, settings.run_dir.resolve() / "kafka.pid", "Kafka")
                await asyncio.sleep(3)
                await asyncio.to_thread(infra.start_kafka, settings, libs)
            else:
                await asyncio.to_thread(infra.stop_postgres, settings)
                await asyncio.sleep(3)
                await asyncio.to_thread(infra.start_postgres, settings)
            watchers.append(asyncio.create_task(recovered(stack, ledger, fault, stop, after=0)))
        elif time.monotonic() >= next_kill and (plan.kills is None or kills < plan.kills):
            processes = stack.processes()
            name = rng.choice(sorted(processes))
            with contextlib.suppress(ProcessLookupError):
                os.kill(processes[name], signal.SIGKILL)
                kills += 1
                fault = Fault("kill", name.removeprefix("services.").removesuffix(".app"), ledger.now(), process=name)
                ledger.faults.append(fault)
                watchers.append(asyncio.create_task(recovered(stack, ledger, fault, stop)))
            next_kill = time.monotonic() + plan.kill_every
    return watchers


async def consumer_lag(settings: Settings) -> dict[str, int]:
    """Each consumer group's lag: the records between its committed offsets and the topics' end offsets."""
    admin = AIOKafkaAdminClient(**kafka.auth(settings))
    reader = AIOKafkaConsumer(**kafka.auth(settings), group_id=None)
    await admin.start()
    await reader.start()
    try:
        groups = [g[0] if isinstance(g, tuple) else g.group_id for g in await admin.list_consumer_groups()]
        lag: dict[str, int] = {}
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group)
            if not committed:
                continue
            ends = await reader.end_offsets(list(committed))
            lag[group] = sum(max(ends[tp] - meta.offset, 0) for tp, meta in committed.items() if meta.offset >= 0)
        return lag
    finally:
        await reader.stop()
        await admin.close()


async def outboxes(stack: Stack) -> int:
    schemas = [r["schemaname"] for r in await stack.pool.fetch(
        "SELECT schemaname FROM pg_tables WHERE tablename = 'outbox'")]  # fmt: skip
    return sum([await stack.pool.fetchval(f'SELECT count(*) FROM "{s}".outbox') for s in schemas])


async def sampler(stack: Stack, ledger: Ledger, stop: asyncio.Event) -> None:
    """The timeline: closed loops completed and total consumer lag, every two seconds."""
    while not stop.is_set():
        with contextlib.suppress(Exception):  # the broker or the database may be restarting
            lag = await asyncio.wait_for(consumer_lag(stack.settings), 5)
            ledger.timeline.append({"t": ledger.now(), "completed": len(ledger.completed),
                                    "lag": sum(lag.values())})  # fmt: skip
        await asyncio.sleep(2)


async def quiesce(stack: Stack, ledger: Ledger, *, timeout: float = 240) -> dict[str, Any]:
    """Wait until every outbox is empty and every consumer group has read to the end; say how long it took."""
    began, deadline = time.monotonic(), time.monotonic() + timeout
    left: dict[str, Any] = {}
    first: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            lag, pending = await consumer_lag(stack.settings), await outboxes(stack)
            left = {"outbox_rows": pending, "lag": {g: n for g, n in lag.items() if n}}
            first = first if first is not None else left
            if not pending and not left["lag"]:
                return {"drained": True, "seconds": round(time.monotonic() - began, 1), "at_start": first}
        await asyncio.sleep(1)
    return {"drained": False, "seconds": round(time.monotonic() - began, 1), "left": left, "at_start": first}


async def read_all(settings: Settings, topic: str, *, timeout: float = 60) -> list[Any]:
    """Every message of ``topic``, each partition read to the end offset it had when the reading began; raises
    unless every partition got there (so an absence found in the result is a real one)."""
    reader = AIOKafkaConsumer(topic, **kafka.auth(settings), group_id=None, enable_auto_commit=False,
                              auto_offset_reset="earliest")  # fmt: skip
    await reader.start()
    deadline = time.monotonic() + timeout
    try:
        while not reader.assignment():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic}: no partitions assigned")
            await asyncio.sleep(0.05)
        ends = await reader.end_offsets(list(reader.assignment()))
        messages: list[Any] = []
        while any([await reader.position(tp) < end for tp, end in ends.items()]):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic}: not read to its end offsets within {timeout:.0f}s")
            for batch in (await reader.getmany(timeout_ms=500, max_records=5000)).values():
                messages.extend(batch)
        return messages
    finally:
        await reader.stop()


def _header(message: Any, name: str) -> str | None:
    for key, value in message.headers or ():
        if key == name:
            return bytes(value).decode()
    return None


async def check(stack: Stack, ledger: Ledger) -> dict[str, Any]:
    """Every promise, read from the outside: topics to their end offsets, and the databases."""
    db, settings = stack.pool, stack.settings
    erased = {s for s, _ in ledger.erased}
    # An erased survivor's referrals were completed first, then purged everywhere: the purge is the final state.
    told = sorted(r for r, s in ledger.told_accepted.items() if s not in erased)
    final = {r["referral_id"]: r["status"] for r in await db.fetch(
        "SELECT referral_id, status FROM referrals.referrals WHERE referral_id = ANY($1)", told)}  # fmt: skip
    lost = [str(r) for r in told if r not in final]
    unfinished = [str(r) for r in told if r in final and final[r] != "completed"]
    purged = [r for r, s in ledger.told_accepted.items() if s in erased]
    not_purged = await db.fetchval("SELECT count(*) FROM referrals.referrals WHERE referral_id = ANY($1)", purged)

    twice_per_bed = await db.fetchval(
        "SELECT count(*) FROM (SELECT bed_id FROM shelter.placements WHERE status IN ('reserved', 'checked_in')"
        " GROUP BY bed_id HAVING count(*) > 1) x")  # fmt: skip
    twice_per_referral = await db.fetchval(
        "SELECT count(*) FROM (SELECT referral_id FROM shelter.placements GROUP BY referral_id HAVING count(*) > 1) x"
    )
    repeated_transitions = await db.fetchval(
        "SELECT count(*) FROM (SELECT referral_id, from_status, to_status FROM referrals.transitions"
        " GROUP BY 1, 2, 3 HAVING count(*) > 1) x")  # fmt: skip
    twin_directives = await db.fetchval(
        "SELECT count(*) FROM (SELECT survivor_id FROM consent.directives GROUP BY survivor_id,"
        " directive->'grantee'->>'org_id' HAVING count(DISTINCT directive_id) > 1) x")  # fmt: skip
    twin_referrals = await db.fetchval(
        "SELECT count(*) FROM (SELECT survivor_id FROM referrals.referrals WHERE status <> 'cancelled'"
        " GROUP BY survivor_id, recipient_org, referral_type HAVING count(*) > 1) x")  # fmt: skip
    repeated_projected = await db.fetchval(
        "SELECT count(*) FROM (SELECT referral_id, status FROM gateway.transitions GROUP BY 1, 2 HAVING count(*) > 1) x"
    )

    outcomes: dict[str, set[str]] = {}
    copies = 0
    for m in await read_all(settings, OUTCOMES.name, timeout=120):
        command = json.loads(m.value).get("command_id")
        ids = outcomes.setdefault(command, set())
        event_id = _header(m, "ce_id") or ""
        copies += event_id in ids
        ids.add(event_id)
    answered_twice = sorted(c for c, ids in outcomes.items() if len(ids) > 1)

    dead: dict[str, str] = {}
    for topic in sorted({t for t, _ in ledger.poison.values()}):
        for m in await read_all(settings, dlq_name(topic), timeout=120):
            if (marker := _header(m, "ce_id")) in ledger.poison and (reason := _header(m, "haven_dlq_reason")):
                dead[marker] = reason
    missing_poison = sorted(set(ledger.poison) - set(dead))

    rules = {"second acceptance", "acceptance after cancellation", "no free bed"}
    untried = sorted(rules - {r["rule"] for r in ledger.refusals})
    refusals_unanswered = [r for r in ledger.refusals if r["rule"] != "no free bed" and r["status"] != "REFUSED"]
    for r in (r for r in ledger.refusals if r["rule"] == "no free bed"):
        status = await db.fetchval("SELECT status FROM gateway.referrals WHERE referral_id = $1", UUID(r["referral"]))
        if status != "rejected":
            refusals_unanswered.append({**r, "read_model": status})

    leaks: list[str] = []
    async with aiohttp.ClientSession() as session:
        partner = Partner(stack, session, ledger)
        for survivor, key in ledger.revoked:
            with contextlib.suppress(Refused):  # CONSENT_REQUIRED: the read is refused, as it should be
                seen = (await partner.call(key, READ, {"s": str(survivor)}))["survivor"]
                if seen and (seen.get("identity") or seen.get("contact")):
                    leaks.append(f"{survivor}: revoked categories returned")
        for survivor, key in ledger.erased:
            with contextlib.suppress(Refused):
                if (await partner.call(key, READ, {"s": str(survivor)}))["survivor"]:
                    leaks.append(f"{survivor}: erased, still read")
    keys_left = await db.fetchval("SELECT count(*) FROM keyring.data_keys WHERE survivor_id = ANY($1)", list(erased))
    if keys_left:
        leaks.append(f"{keys_left} erased survivors' keys still open their data")
    if not_purged:
        leaks.append(f"{not_purged} referrals of erased survivors still held by the referrals service")

    from gateway.audit import verify  # graphql/ is on sys.path, as for make bench

    async with db.acquire() as conn:
        verdict = await verify(conn)
    return {
        "referrals_told_accepted": len(told) + len(purged),
        "referrals_purged_with_their_erased_survivor": len(purged),
        "completed": sum(1 for r in told if final.get(r) == "completed") + len(purged),
        "lost": lost,
        "unfinished": unfinished[:20],
        "unfinished_count": len(unfinished),
        "duplicated": {
            "beds_with_two_placements": twice_per_bed,
            "referrals_with_two_placements": twice_per_referral,
            "transitions_recorded_twice": repeated_transitions,
            "transitions_projected_twice": repeated_projected,
            "commands_with_two_outcomes": len(answered_twice),
            "grants_recorded_twice": twin_directives,
            "referrals_made_twice": twin_referrals,
        },
        "outcome_copies_same_event_id": copies,
        "poison": {
            "sent": len(ledger.poison),
            "dead_lettered_with_reason": len(dead),
            "missing": missing_poison[:20],
            "by_kind": Counter(k for _, k in ledger.poison.values()),
            "reasons": Counter(dead.values()),
        },
        "refusals": {"sent": len(ledger.refusals), "not_answered": refusals_unanswered, "rules_never_tried": untried},
        "revoked": len(ledger.revoked),
        "erased": len(ledger.erased),
        "leaks": leaks,
        "audit": {"rows": verdict.rows, "broken_at": verdict.broken_at, "problem": verdict.problem},
    }


def plot(results: dict[str, Any], path: Path) -> None:
    """The timeline: closed loops completed per second and total consumer lag, with each fault marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timeline = results["timeline"]
    if len(timeline) < 2:
        return
    t = [p["t"] for p in timeline]
    rate = [0.0] + [
        (b["completed"] - a["completed"]) / max(b["t"] - a["t"], 0.1) for a, b in itertools.pairwise(timeline)
    ]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    top.plot(t, rate, color="#2a6f97")
    top.set_ylabel("closed loops / s")
    bottom.plot(t, [p["lag"] for p in timeline], color="#bc4749")
    bottom.set_ylabel("consumer lag (records)")
    bottom.set_xlabel("seconds since the load began")
    for fault in results["faults"]:
        colour = {"kill": "#999999", "kafka restart": "#e76f51", "postgresql restart": "#6a4c93"}[fault["kind"]]
        for axis in (top, bottom):
            axis.axvline(fault["at"], color=colour, linewidth=0.8, linestyle="--")
        top.annotate(fault["target"], (fault["at"], top.get_ylim()[1]), rotation=90, fontsize=6, va="top",
                     color=colour)  # fmt: skip
    verdict, s = "PASSED" if results["passed"] else "FAILED", results["summary"]
    fig.suptitle(f"make chaos: {s['messages_in']} referrals accepted, {s['lost']} lost, {s['duplicated']} duplicated, "
                 f"{len(results['faults'])} faults — {verdict}")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def summarise(ledger: Ledger, checks: dict[str, Any], drained: dict[str, Any]) -> dict[str, Any]:
    duplicated = sum(checks["duplicated"].values())
    unrecovered = [f.kind + " " + f.target for f in ledger.faults if f.ready_s is None] + (
        [] if drained["drained"] else ["the stack did not drain"])  # fmt: skip
    return {
        "messages_in": checks["referrals_told_accepted"],
        "messages_out": checks["completed"],
        "lost": len(checks["lost"]) + checks["unfinished_count"],
        "duplicated": duplicated,
        "leaked": len(checks["leaks"]),
        "poison_missing_from_dlq": len(checks["poison"]["missing"]),
        "refusals_not_answered": len(checks["refusals"]["not_answered"]),
        "rules_never_tried": checks["refusals"]["rules_never_tried"],
        "commands_never_answered": len(ledger.undecided),
        # A valid command the platform refused (the loop could not go on): not lost, but a partner stuck.
        "valid_commands_refused": sum(n for why, n in ledger.abandoned.items() if "unanswered" not in why),
        "audit_broken": checks["audit"]["broken_at"] is not None,
        "reads_not_audited": max(ledger.reads - checks["audit"]["rows"], 0),
        "unrecovered": unrecovered,
        "faults": dict(Counter(f.kind for f in ledger.faults)),
    }


async def run(plan: Plan, *, port: int, draw: bool) -> dict[str, Any]:
    settings = Settings()
    log = settings.run_dir / "chaos-stack.log"
    stack = await start(settings, port, log, shelters=8, beds=plan.referrals + 10, split=True, replicas=TWICE)
    await setup_tiny_shelter(stack)
    ledger = Ledger()
    stop_faults, stop_all = asyncio.Event(), asyncio.Event()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=plan.workers * 2)) as session:
            partner = Partner(stack, session, ledger)
            queue = iter(range(plan.referrals))

            async def worker() -> None:
                for n in queue:
                    try:
                        await closed_loop(partner, n)
                    except Exception as failed:  # counted (and failing the run), not fatal to it
                        ledger.abandoned[f"harness: {type(failed).__name__}: {failed}"[:200]] += 1

            async def ticker() -> None:
                while not stop_all.is_set():
                    progress(len(ledger.completed), plan.referrals,
                             f"chaos ({len(ledger.faults)} faults, {len(ledger.poison)} poison)")  # fmt: skip
                    await asyncio.sleep(1)

            side = [asyncio.create_task(c) for c in (poison(settings, ledger, stop_all),
                                                     sampler(stack, ledger, stop_all),
                                                     ticker())]  # fmt: skip
            injector = asyncio.create_task(faults(stack, ledger, plan, stop_faults))
            ledger.began = time.monotonic()
            await asyncio.gather(no_free_bed(partner), *(worker() for _ in range(plan.workers)))
            stop_faults.set()
            watchers = await injector
            await asyncio.gather(*watchers)
            drained = await quiesce(stack, ledger)
            stop_all.set()
            await asyncio.gather(*side, return_exceptions=True)
        checks = await check(stack, ledger)
    finally:
        stop_all.set()
        await stop(stack)
    summary = summarise(ledger, checks, drained)
    passed = not (
        summary["lost"]
        or summary["duplicated"]
        or summary["leaked"]
        or summary["unrecovered"]
        or summary["poison_missing_from_dlq"]
        or summary["refusals_not_answered"]
        or summary["audit_broken"]
        or summary["commands_never_answered"]
        or summary["reads_not_audited"]
        or summary["valid_commands_refused"]
        or summary["rules_never_tried"]
    )
    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "plan": {
            "referrals": plan.referrals,
            "workers": plan.workers,
            "kill_every_s": plan.kill_every,
            "seed": plan.seed,
            "processes": "one per service, two of each provider",
        },
        "passed": passed,
        "summary": summary,
        "seconds": ledger.now(),
        "commands_sent": ledger.commands,
        "reads": ledger.reads,
        "abandoned_loops": dict(ledger.abandoned),
        "retried_calls": dict(ledger.retried),
        "drained": drained,
        "checks": checks,
        "faults": [vars(f) for f in ledger.faults],
        "timeline": ledger.timeline,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "smoke" if plan.kills == 1 else "latest"
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    if draw:
        plot(results, RESULTS / f"{name}.png")
    return results


async def setup_tiny_shelter(stack: Stack) -> None:
    """A shelter with one bed, for the placement that finds no free bed."""
    from gateway.auth import Role, create_key
    from gateway.cli import register

    from bench.pipeline import ACT as CONFIGURE
    from bench.pipeline import org
    from events.consent import OrgType
    from events.needs import ReferralType

    tiny = org(f"chaos-one-bed-{uuid4().hex[:6]}", OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    await register(stack.pool, tiny)
    async with stack.pool.acquire() as conn:
        key = await create_key(conn, tiny.org_id, Role.CASEWORKER, "chaos")
        referrer = await create_key(conn, stack.intake_org, Role.CASEWORKER, "chaos")
    async with aiohttp.ClientSession() as session:
        await stack.call(session, key, CONFIGURE,
                         {"a": {"configureShelter": {"beds": [{"unitType": "ADULT_WOMEN", "count": 1}]}}})  # fmt: skip
    for _ in range(600):
        if await stack.pool.fetchval(
            "SELECT 1 FROM shelter.beds WHERE org_id = $1", tiny.org_id
        ) and await stack.pool.fetchval("SELECT 1 FROM referrals.organisations WHERE org_id = $1", tiny.org_id):
            break
        await asyncio.sleep(0.1)
    stack.tiny = (tiny.org_id, key, referrer)


def report(results: dict[str, Any]) -> str:
    s, c = results["summary"], results["checks"]
    lines = [
        f"chaos ▸ {'PASSED' if results['passed'] else 'FAILED'} in {results['seconds']:.0f} s "
        f"({results['commands_sent']} commands through GraphQL)",
        f"chaos ▸ referrals accepted (in) {s['messages_in']} · completed (out) {s['messages_out']} · lost {s['lost']} "
        f"· duplicated {s['duplicated']} · leaked {s['leaked']}",
        f"chaos ▸ faults {s['faults']} · unrecovered {len(s['unrecovered'])}",
        f"chaos ▸ poison {c['poison']['sent']} sent, {c['poison']['dead_lettered_with_reason']} in .dlq with a reason"
        f" · rule-breaking commands {c['refusals']['sent']}, {len(c['refusals']['not_answered'])} not answered"
        + (f", never tried: {', '.join(s['rules_never_tried'])}" if s["rules_never_tried"] else ""),
        f"chaos ▸ revoked {c['revoked']} · erased {c['erased']} · {results['reads']} reads of survivor data, audit "
        f"{c['audit']['rows']} rows, "
        f"{'verifies' if c['audit']['broken_at'] is None else 'BROKEN at ' + str(c['audit']['broken_at'])}",
        f"chaos ▸ outcome copies republished with the same event id (dropped by every inbox): "
        f"{c['outcome_copies_same_event_id']}",
        f"chaos ▸ loops stopped by a refusal of a valid command: {s['valid_commands_refused']} · commands never "
        f"answered: {s['commands_never_answered']} · reads not audited: {s['reads_not_audited']}",
    ]
    for f in results["faults"]:
        lines.append(f"chaos ▸   {f['at']:7.1f}s {f['kind']:<19} {f['target']:<28} ready after "
                     f"{f['ready_s'] if f['ready_s'] is not None else '—'} s, referrals completing after "
                     f"{f['resumed_s'] if f['resumed_s'] is not None else '—'} s")  # fmt: skip
    if results["abandoned_loops"]:
        lines.append(
            f"chaos ▸ loops stopped by a refusal or by no answer (not counted in): {results['abandoned_loops']}"
        )
    lines.append(
        f"chaos ▸ drained in {results['drained']['seconds']} s (left when the load ended: "
        f"{(results['drained'].get('at_start') or {}).get('lag') or 'nothing'})"
        + ("" if results["drained"]["drained"] else f" — NOT drained: {results['drained'].get('left')}")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import uvloop
    from gateway.app import GatewaySettings

    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--referrals", type=int, default=5000, help="closed-loop referrals to drive (default 5000)")
    parser.add_argument("--workers", type=int, default=24, help="partners' calls in flight at once")
    parser.add_argument("--kill-every", type=float, default=10.0, help="seconds between process kills")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="which processes die, and when")
    parser.add_argument("--smoke", action="store_true", help="short: 150 referrals, one fault of each kind")
    parser.add_argument("--no-plot", action="store_true", help="no timeline plot (matplotlib is a bench extra)")
    args = parser.parse_args(argv)
    if args.smoke:
        plan = Plan(referrals=150, workers=12, kill_every=min(args.kill_every, 6.0), kills=1, seed=args.seed)
    else:
        plan = Plan(args.referrals, args.workers, args.kill_every, kills=None, seed=args.seed)
    results = uvloop.run(run(plan, port=GatewaySettings().gateway_port, draw=not args.no_plot))
    print(report(results), flush=True)
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

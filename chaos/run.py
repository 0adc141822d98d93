"""One chaos run: Parley under the supervisor, scripted visitors and operators chatting
through the gateway, every kind of kill in turn (kills.KINDS), for `rounds` rounds;
then the clients finish, everything still owed is given time to arrive, and the
figures are taken (checks.py); the owner erases some visitors' conversations, and every
projection is compared against a rebuild from the topics (rebuild.py), erased ones
included."""
from __future__ import annotations

import asyncio
import secrets
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

from chaos import checks, kills, rebuild, report, system
from chaos.clients import Operator, Traffic, Visitor


@dataclass
class Settings:
    visitors: int = 20
    messages: int = 10          # at least this many each; they go on writing until the last kill is over
    operators: int = 2
    rounds: int = 2
    quiet: float = 8.0          # seconds of undisturbed chat before each kill
    pause: float = 3.0          # between a visitor's messages (0.8-1.2x): under the 30 a minute a visitor may send
    settle: float = 120.0       # after the last kill, for the answers still owed
    erase: int = 2              # visitors whose conversations the owner erases before the rebuild


def progress(message: str) -> None:
    print(f"[chaos] {message}", file=sys.stderr, flush=True)


def _owed(visitors: list[Visitor], operators: list[Operator]) -> int:
    """Acknowledged visitor messages still without an acknowledged reply, or not yet
    shown to the other side."""
    replied = {t: r for o in operators for t, r in o.replied.items()}
    shown = {e["data"]["text"] for o in operators for s in o.view.values() for e in s.values()
             if e["event"] == "chat.visitor_message_posted"}
    owed = 0
    for v in visitors:
        seen = set(v.operator_texts())
        for text in v.acked:
            owed += text not in shown
            owed += text not in replied or (replied[text] != "" and replied[text] not in seen)
    return owed


async def _operators(sys_: system.System, http: aiohttp.ClientSession, traffic: Traffic, n: int,
                     stop: asyncio.Event) -> list[Operator]:
    owner = Operator("owner", sys_.owner_email, sys_.owner_password, sys_.gateway, http, traffic)
    await owner.login(stop)
    operators = [owner]
    for i in range(2, n + 1):
        email, password = f"operator{i}@chaos.local", secrets.token_hex(12)
        status, body = await owner._call("POST", "/api/operators", "/api/operators", json={
            "name": f"Operator {i}", "email": email, "password": password, "is_admin": False})
        if status != 201:
            raise RuntimeError(f"could not add an operator: {status} {body}")
        operator = Operator(f"operator {i}", email, password, sys_.gateway, http, traffic)
        await operator.login(stop)
        operators.append(operator)
    return operators


async def _chat(visitor: Visitor, settings: Settings, kills_over: asyncio.Event, stop: asyncio.Event) -> None:
    await visitor.open_session(stop)
    connected = asyncio.create_task(visitor.keep_connected(stop))
    try:
        k = 0
        while not stop.is_set() and (k < settings.messages or not kills_over.is_set()):
            k += 1
            await visitor.send(f"v{visitor.number} #{k}")
            await asyncio.sleep(settings.pause * (0.8 + visitor.number % 5 / 10))
        visitor.done_writing = True
        await stop.wait()
    finally:
        connected.cancel()
        await asyncio.gather(connected, return_exceptions=True)


async def chaos(sys_: system.System, settings: Settings) -> tuple[checks.Figures, list[kills.Kill],
                                                                   list[rebuild.TableCheck]]:
    traffic = Traffic()
    stop, kills_over = asyncio.Event(), asyncio.Event()
    done: list[kills.Kill] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=20)) as http:
        operators = await _operators(sys_, http, traffic, settings.operators, stop)
        visitors = [Visitor(i, sys_.gateway, http, traffic) for i in range(1, settings.visitors + 1)]
        tasks = [asyncio.create_task(t) for o in operators for t in (o.keep_connected(stop), o.work(stop))]
        tasks += [asyncio.create_task(_chat(v, settings, kills_over, stop)) for v in visitors]
        try:
            for round_ in range(1, settings.rounds + 1):
                for target in kills.KINDS:
                    await asyncio.sleep(settings.quiet)
                    acked = sum(len(v.acked) for v in visitors)
                    retried = sum(sum(v.retried.values()) for v in visitors)
                    progress(f"round {round_}/{settings.rounds}: killing {target} ({acked} visitor messages acked, "
                             f"{sum(len(o.replied) for o in operators)} replies, {retried} resends so far)")
                    kill = await kills.kill(sys_, target)
                    done.append(kill)
                    progress(f"  {target} back after {kill.down_s} s (restarts so far: "
                             f"{sys_.supervisor.restarts()}, 5xx so far: {len(traffic.errors_5xx)})")
            kills_over.set()
            progress(f"kills over; visitors finish their {settings.messages} messages each and the answers arrive...")
            deadline = time.monotonic() + settings.settle + kills.GRACE
            while time.monotonic() < deadline:
                if all(v.done_writing for v in visitors) and _owed(visitors, operators) == 0:
                    break
                await asyncio.sleep(0.5)
            progress(f"settled: {sum(len(v.acked) for v in visitors)} visitor messages acked, "
                     f"{_owed(visitors, operators)} still owed")
        finally:
            stop.set()
            await asyncio.sleep(0.5)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    progress("reading the event store...")
    stored = await checks.stored_messages(sys_.comps.database_url)
    erased = await _erase(sys_, visitors[:settings.erase])   # after reading: erasure empties their texts
    progress("rebuilding the projections from the topics...")
    tables = await rebuild.check(sys_.comps.database_url, sys_.comps.bootstrap)
    figures = checks.figures(visitors, operators, traffic, done, stored, tables)
    figures.conversations_erased = erased
    return figures, done, tables


async def _erase(sys_: system.System, visitors: list[Visitor], timeout: float = 120) -> int:
    """The owner erases these visitors' conversations and waits until each erasure is
    done; how many conversations were erased. Raises if one is refused or never done."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        owner = Operator("owner", sys_.owner_email, sys_.owner_password, sys_.gateway, http, Traffic())
        await owner.login(asyncio.Event())
        pending: dict[str, int] = {}
        for v in visitors:
            status, body = await owner._call("POST", "/api/project/privacy/erasures", "/api/project/privacy/erasures",
                                             json={"conversation_id": v.conversation_id})
            if status != 202:
                raise RuntimeError(f"the erasure of {v.name}'s conversation was refused: {status} {body}")
            pending[body["id"]] = body["conversations"]
        progress(f"erasing {len(visitors)} visitors' conversations...")
        erased, deadline = 0, time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for erasure_id in list(pending):
                status, body = await owner._call("GET", f"/api/project/privacy/erasures/{erasure_id}",
                                                 "/api/project/privacy/erasures/{id}")
                if status == 200 and body["status"] == "done":
                    erased += pending.pop(erasure_id)
            await asyncio.sleep(0.5)
        if pending:
            raise RuntimeError(f"{len(pending)} erasure(s) not done in {timeout} s")
        return erased


def run(settings: Settings, artifacts: Path | None) -> dict:
    started = time.monotonic()
    sys_ = system.start()
    try:
        figures, done, tables = asyncio.run(chaos(sys_, settings))
    finally:
        progress("stopping everything and removing the run folder...")
        sys_.stop()
    result = report.as_dict({**asdict(settings)}, figures, done, tables, time.monotonic() - started)
    if artifacts is not None:
        path = report.write(result, artifacts)
        progress(f"report: {path}")
    return result

"""The admin API: its token, key management, balances with their ledger, paging, usage; and a key's own
billing view. Every refusal is OpenAI-shaped and changes nothing; the ledger verifies after each scenario.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.backends.fake import FailingBackend, GatedBackend
from reelgate.billing import ledger
from reelgate.billing.audit import verify_ledger
from reelgate.settings import Settings
from reelgate.store.tables import api_keys
from reelgate.store.tables import ledger as ledger_table
from reelgate.tasks import repository as repo
from reelgate.tasks.models import TaskError, TaskStatus
from reelgate.tasks.settle import fail_task
from tests.conftest import assert_openai_error, make_settings
from tests.store.test_store import _task

TOKEN = "admin-token-for-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
DAY1 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 2, 23, 30, tzinfo=UTC)


@pytest.fixture
def backends() -> dict[str, Any]:
    """Nothing here renders: a backend that holds every task it gets."""
    return {"procedural": GatedBackend(FailingBackend(), name="procedural")}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, admin_token=TOKEN)


@asynccontextmanager
async def client_for(settings: Settings, backends: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    from reelgate.app import create_app

    app = create_app(settings, backends)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=ADMIN) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def both(tmp_path: Path, database_url: str, backends: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of an app on SQLite and, as a second run, on PostgreSQL."""
    async with client_for(make_settings(tmp_path, admin_token=TOKEN, database_url=database_url), backends) as client:
        yield client


@pytest.fixture
async def admin(app_client: httpx.AsyncClient) -> httpx.AsyncClient:
    app_client.headers.update(ADMIN)
    return app_client


def engine_of(client: httpx.AsyncClient) -> AsyncEngine:
    return client.app.state.runtime.engine  # type: ignore[attr-defined,no-any-return]


async def new_key(client: httpx.AsyncClient, headers: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    response = await client.post("/admin/keys", json={"balance": "10", **body}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def books(client: httpx.AsyncClient) -> tuple[int, int, list[tuple[str, int]]]:
    """Keys, ledger entries and every (key, balance): what a refused request must leave as it was."""
    async with engine_of(client).connect() as conn:
        n_keys = await conn.scalar(select(func.count()).select_from(api_keys))
        n_entries = await conn.scalar(select(func.count()).select_from(ledger_table))
        balances = [(r.id, r.balance) for r in await conn.execute(select(api_keys).order_by(api_keys.c.id))]
        assert await verify_ledger(conn) == []
    return int(n_keys or 0), int(n_entries or 0), balances


async def add_task(
    engine: AsyncEngine, key_id: str, *, model: str, at: datetime, status: TaskStatus = TaskStatus.COMPLETED
) -> str:
    """A charged task created at `at`, completed or failed (and refunded), its ledger entries dated `at`."""
    task = replace(_task(key_id), model=model, created_at=at, status=TaskStatus.QUEUED)
    async with engine.begin() as conn:
        await ledger.debit(conn, key_id, task.price, task.id)
        await repo.insert_task(conn, task)
        await repo.claim(conn, task.id, "w", at)
        if status is TaskStatus.FAILED:
            await fail_task(conn, task.id, TaskError("boom", "boom"), at, refund=True)
        else:
            await conn.run_sync(
                repo.complete_sync, task.id, share_id=f"s_{task.id[-20:]}", video_file="v", thumbnail_file="t", now=at
            )
        await conn.execute(update(ledger_table).where(ledger_table.c.task_id == task.id).values(created_at=at))
    return task.id


# --- the admin token ------------------------------------------------------------------------------------


async def test_without_a_token_there_is_no_admin_api(
    tmp_path: Path, backends: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="reelgate.app"):
        async with client_for(make_settings(tmp_path), backends) as client:
            for method, path in (("GET", "/admin/keys"), ("POST", "/admin/keys"), ("GET", "/admin/usage")):
                assert_openai_error(await client.request(method, path, json={}), 404, "not_found")
    assert any("admin API disabled" in record.message for record in caplog.records)


@pytest.mark.parametrize("token", ["short", " padded-admin-token-0123456789 "])
def test_weak_admin_tokens_are_refused(tmp_path: Path, token: str) -> None:
    with pytest.raises(ValidationError, match="admin token"):
        make_settings(tmp_path, admin_token=token)


async def test_admin_token_is_required(app_client: httpx.AsyncClient) -> None:
    key = await new_key(app_client, name="k", headers=ADMIN)
    assert key["object"] == "api_key"
    before = await books(app_client)
    for headers, status, code in (
        ({"Authorization": ""}, 401, "invalid_admin_token"),
        ({"Authorization": "Bearer"}, 401, "invalid_admin_token"),
        ({"Authorization": "Bearer wrong-admin-token-0123456789"}, 401, "invalid_admin_token"),
        ({"Authorization": f"Bearer {TOKEN}x"}, 401, "invalid_admin_token"),
        ({"Authorization": f"Bearer {key['secret']}"}, 403, "permission_denied"),
    ):
        app_client.headers.update(headers)
        assert_openai_error(await app_client.get("/admin/keys"), status, code, "invalid_request_error")
        assert_openai_error(await app_client.post("/admin/keys", json={"balance": "5"}), status, code)
    app_client.headers.update({"Authorization": TOKEN})  # the bare form works as for API keys
    assert (await app_client.get("/admin/keys")).status_code == 200
    assert await books(app_client) == before


# --- keys -----------------------------------------------------------------------------------------------


async def test_a_created_key_works_at_once(admin: httpx.AsyncClient) -> None:
    key = await new_key(admin, name="alice", balance=2.5, rpm_limit=30, concurrency_limit=2)
    assert key["secret"].startswith("sk-")
    assert {k: key[k] for k in ("name", "balance", "rpm_limit", "concurrency_limit", "disabled", "deleted")} == {
        "name": "alice",
        "balance": "2.5",
        "rpm_limit": 30,
        "concurrency_limit": 2,
        "disabled": False,
        "deleted": False,
    }
    own = {"Authorization": f"Bearer {key['secret']}"}
    balance = await admin.get("/v1/dashboard/billing/balance", headers=own)
    assert balance.json() == {
        "object": "billing_balance",
        "key_id": key["id"],
        "name": "alice",
        "balance": "2.5",
        "total_used": "0",
        "expires_at": None,
    }
    assert (await admin.get("/v1/models", headers=own)).status_code == 200
    shown = (await admin.get(f"/admin/keys/{key['id']}")).json()
    assert "secret" not in shown and shown == {k: v for k, v in key.items() if k != "secret"}
    entries = (await admin.get(f"/admin/keys/{key['id']}/ledger")).json()["data"]
    assert [(e["kind"], e["amount"], e["balance_after"], e["note"]) for e in entries] == [
        ("credit", "2.5", "2.5", "initial balance")
    ]


async def test_an_expired_key_is_refused(admin: httpx.AsyncClient) -> None:
    key = await new_key(admin, expires_at=(datetime.now(UTC) - timedelta(minutes=1)).isoformat())
    own = {"Authorization": key["secret"]}
    refused = await admin.get("/v1/models", headers=own)
    assert_openai_error(refused, 401, "api_key_expired", "invalid_request_error")
    assert "expired" in refused.json()["error"]["message"]
    assert_openai_error(await admin.get("/v1/dashboard/billing/balance", headers=own), 401, "api_key_expired")
    later = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    changed = await admin.patch(f"/admin/keys/{key['id']}", json={"expires_at": later.isoformat()})
    assert changed.json()["expires_at"] == int(later.timestamp())
    assert (await admin.get("/v1/models", headers=own)).status_code == 200
    assert (await admin.patch(f"/admin/keys/{key['id']}", json={"expires_at": None})).json()["expires_at"] is None


async def test_a_key_limited_to_some_models(admin: httpx.AsyncClient) -> None:
    key = await new_key(admin, allowed_models=["sora-2-hd-10s-chat"])
    own = {"Authorization": key["secret"]}
    models = (await admin.get("/v1/models", headers=own)).json()["data"]
    assert [m["id"] for m in models] == ["sora-2-hd-10s-chat"]
    before = await books(admin)
    body = {"model": "sora-2-hd-15s-chat", "messages": [{"role": "user", "content": "一只猫"}], "stream": True}
    assert_openai_error(await admin.post("/v1/chat/completions", json=body, headers=own), 404, "model_not_found")
    assert_openai_error(await admin.get("/v1/models/sora-2-hd-15s-chat", headers=own), 404, "model_not_found")
    assert await books(admin) == before
    everything = await admin.patch(f"/admin/keys/{key['id']}", json={"allowed_models": None})
    assert everything.json()["allowed_models"] is None
    assert len((await admin.get("/v1/models", headers=own)).json()["data"]) == 7  # 4 models, 3 dated snapshots


async def test_patch_changes_only_what_it_names(admin: httpx.AsyncClient) -> None:
    key = await new_key(admin, name="before", rpm_limit=5, allowed_models=["sora-2-hd-10s-chat"])
    changed = (await admin.patch(f"/admin/keys/{key['id']}", json={"name": "after", "rpm_limit": None})).json()
    assert (changed["name"], changed["rpm_limit"], changed["allowed_models"]) == ("after", None, ["sora-2-hd-10s-chat"])
    assert changed["balance"] == "10"


async def test_disable_enable_delete(admin: httpx.AsyncClient) -> None:
    key = await new_key(admin)
    own = {"Authorization": key["secret"]}
    disabled = await admin.post(f"/admin/keys/{key['id']}/disable")
    assert disabled.json()["disabled"] is True
    assert_openai_error(await admin.get("/v1/models", headers=own), 401, "api_key_disabled")
    assert (await admin.post(f"/admin/keys/{key['id']}/enable")).json()["disabled"] is False
    assert (await admin.get("/v1/models", headers=own)).status_code == 200

    deleted = await admin.delete(f"/admin/keys/{key['id']}")
    assert deleted.json()["deleted"] is True
    assert (await admin.delete(f"/admin/keys/{key['id']}")).json()["deleted"] is True  # idempotent
    assert_openai_error(await admin.get("/v1/models", headers=own), 401, "invalid_api_key")
    assert (await admin.get(f"/admin/keys/{key['id']}")).json()["deleted"] is True
    assert [k["id"] for k in (await admin.get("/admin/keys")).json()["data"]] == []
    assert [k["id"] for k in (await admin.get("/admin/keys?include_deleted=true")).json()["data"]] == [key["id"]]
    assert len((await admin.get(f"/admin/keys/{key['id']}/ledger")).json()["data"]) == 1
    before = await books(admin)
    for method, path, body in (
        ("POST", "enable", None),
        ("POST", "disable", None),
        ("PATCH", "", {"name": "x"}),
        ("POST", "balance", {"amount": "1", "reason": "x"}),
    ):
        refused = await admin.request(method, f"/admin/keys/{key['id']}/{path}".rstrip("/"), json=body)
        assert_openai_error(refused, 409, "conflict")
    assert await books(admin) == before


# --- balances and the ledger (SQLite and PostgreSQL) -------------------------------------------------


async def test_top_up_and_adjustment_are_one_entry_each(both: httpx.AsyncClient) -> None:
    key = await new_key(both, balance="10")
    top_up = await both.post(f"/admin/keys/{key['id']}/balance", json={"amount": "5", "reason": "top-up"})
    assert top_up.status_code == 200, top_up.text
    assert {k: top_up.json()[k] for k in ("object", "kind", "amount", "balance_after", "note", "task_id")} == {
        "object": "ledger_entry",
        "kind": "credit",
        "amount": "5",
        "balance_after": "15",
        "note": "top-up",
        "task_id": None,
    }
    adjusted = await both.post(f"/admin/keys/{key['id']}/balance", json={"amount": -2.25, "reason": "  misbilled  "})
    assert (adjusted.json()["kind"], adjusted.json()["amount"], adjusted.json()["note"]) == (
        "adjustment",
        "-2.25",
        "misbilled",
    )
    entries = (await both.get(f"/admin/keys/{key['id']}/ledger?order=asc")).json()["data"]
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in entries] == [
        ("credit", "10", "10"),
        ("credit", "5", "15"),
        ("adjustment", "-2.25", "12.75"),
    ]
    assert (await both.get(f"/admin/keys/{key['id']}")).json()["balance"] == "12.75"
    async with engine_of(both).connect() as conn:
        assert await verify_ledger(conn) == []


async def test_an_adjustment_below_zero_changes_nothing(both: httpx.AsyncClient) -> None:
    key = await new_key(both, balance="1")
    before = await books(both)
    refused = await both.post(f"/admin/keys/{key['id']}/balance", json={"amount": "-1.000001", "reason": "too much"})
    assert_openai_error(refused, 400, "balance_below_zero", "invalid_request_error")
    assert refused.json()["error"]["param"] == "amount"
    assert await books(both) == before
    emptied = await both.post(f"/admin/keys/{key['id']}/balance", json={"amount": "-1", "reason": "close"})
    assert emptied.json()["balance_after"] == "0"


async def test_racing_adjustments_never_overdraw(both: httpx.AsyncClient) -> None:
    key = await new_key(both, balance="5")
    path = f"/admin/keys/{key['id']}/balance"
    answers = await asyncio.gather(*(both.post(path, json={"amount": "-1", "reason": f"r{n}"}) for n in range(12)))
    assert sorted(r.status_code for r in answers) == [200] * 5 + [400] * 7
    assert sorted(r.json()["balance_after"] for r in answers if r.status_code == 200) == ["0", "1", "2", "3", "4"]
    assert (await both.get(f"/admin/keys/{key['id']}")).json()["balance"] == "0"
    assert len((await both.get(f"{path.removesuffix('/balance')}/ledger")).json()["data"]) == 6
    async with engine_of(both).connect() as conn:
        assert await verify_ledger(conn) == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"amount": "abc", "reason": "x"}, "amount"),
        ({"amount": "1.0000001", "reason": "x"}, "amount"),
        ({"amount": "NaN", "reason": "x"}, "amount"),
        ({"amount": "1e12", "reason": "x"}, "amount"),
        ({"amount": True, "reason": "x"}, "amount"),
        ({"amount": None, "reason": "x"}, "amount"),
        ({"amount": "0", "reason": "x"}, "amount"),
        ({"amount": "5"}, "reason"),
        ({"amount": "5", "reason": "   "}, "reason"),
        ({"amount": "5", "reason": "x", "kind": "gift"}, "kind"),
        ([1, 2], None),
    ],
)
async def test_bad_balance_changes(admin: httpx.AsyncClient, body: Any, param: str | None) -> None:
    key = await new_key(admin)
    before = await books(admin)
    refused = await admin.post(f"/admin/keys/{key['id']}/balance", json=body)
    assert_openai_error(refused, 400, refused.json()["error"]["code"], "invalid_request_error")
    assert refused.json()["error"]["param"] == param
    assert await books(admin) == before


async def test_malformed_json_and_unknown_keys(admin: httpx.AsyncClient) -> None:
    key = await new_key(admin)
    before = await books(admin)
    raw = await admin.post(
        f"/admin/keys/{key['id']}/balance", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_openai_error(raw, 400, "invalid_json", "invalid_request_error")
    for method, path, body in (
        ("GET", "/admin/keys/key_nope", None),
        ("PATCH", "/admin/keys/key_nope", {"name": "x"}),
        ("POST", "/admin/keys/key_nope/disable", None),
        ("POST", "/admin/keys/key_nope/enable", None),
        ("DELETE", "/admin/keys/key_nope", None),
        ("POST", "/admin/keys/key_nope/balance", {"amount": "1", "reason": "x"}),
        ("GET", "/admin/keys/key_nope/tasks", None),
        ("GET", "/admin/keys/key_nope/ledger", None),
    ):
        assert_openai_error(await admin.request(method, path, json=body), 404, "not_found", "invalid_request_error")
    assert await books(admin) == before


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"balance": "-1"}, "balance"),
        ({"balance": "ten"}, "balance"),
        ({"rpm_limit": -1}, "rpm_limit"),
        ({"concurrency_limit": "many"}, "concurrency_limit"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"allowed_models": "sora-2-hd-15s-chat"}, "allowed_models"),
        ({"allowed_models": [""]}, "allowed_models.0"),
        ({"name": "x" * 201}, "name"),
        ({"secret": "sk-mine"}, "secret"),
    ],
)
async def test_bad_new_keys(admin: httpx.AsyncClient, body: dict[str, Any], param: str) -> None:
    before = await books(admin)
    refused = await admin.post("/admin/keys", json=body)
    assert_openai_error(refused, 400, None, "invalid_request_error")
    assert refused.json()["error"]["param"] == param
    assert await books(admin) == before


# --- paging -------------------------------------------------------------------------------------------


async def test_paging_keys(both: httpx.AsyncClient) -> None:
    ids = [(await new_key(both, name=f"k{n}"))["id"] for n in range(5)]
    first = (await both.get("/admin/keys?limit=2")).json()
    assert (first["object"], [k["id"] for k in first["data"]], first["has_more"]) == ("list", ids[:2], True)
    assert (first["first_id"], first["last_id"]) == (ids[0], ids[1])
    second = (await both.get(f"/admin/keys?limit=2&after={first['last_id']}")).json()
    assert [k["id"] for k in second["data"]] == ids[2:4] and second["has_more"]
    last = (await both.get(f"/admin/keys?limit=2&after={second['last_id']}")).json()
    assert [k["id"] for k in last["data"]] == ids[4:] and not last["has_more"]
    empty = (await both.get(f"/admin/keys?after={ids[-1]}")).json()
    assert (empty["data"], empty["first_id"], empty["last_id"], empty["has_more"]) == ([], None, None, False)
    newest = (await both.get("/admin/keys?limit=3&order=desc")).json()
    assert [k["id"] for k in newest["data"]] == ids[:1:-1]


async def test_paging_the_ledger_and_tasks(both: httpx.AsyncClient) -> None:
    key = await new_key(both, balance="10")
    for n in range(4):
        await both.post(f"/admin/keys/{key['id']}/balance", json={"amount": str(n + 1), "reason": f"r{n}"})
    task_ids = [await add_task(engine_of(both), key["id"], model="sora-2-hd-15s-chat", at=DAY1) for _ in range(3)]
    page = (await both.get(f"/admin/keys/{key['id']}/ledger?limit=3")).json()  # newest first
    assert [e["kind"] for e in page["data"]] == ["charge", "charge", "charge"] and page["has_more"]
    rest = (await both.get(f"/admin/keys/{key['id']}/ledger?limit=10&after={page['last_id']}")).json()
    assert [e["note"] for e in rest["data"]] == ["r3", "r2", "r1", "r0", "initial balance"]
    assert not rest["has_more"]
    tasks = (await both.get(f"/admin/keys/{key['id']}/tasks?limit=2")).json()
    assert [t["id"] for t in tasks["data"]] == task_ids[:0:-1] and tasks["has_more"]
    assert tasks["data"][0]["object"] == "task" and tasks["data"][0]["price"] == "1"
    older = (await both.get(f"/admin/keys/{key['id']}/tasks?after={tasks['last_id']}")).json()
    assert [t["id"] for t in older["data"]] == task_ids[:1]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "order=sideways", "after=not-a-number"])
async def test_bad_paging(admin: httpx.AsyncClient, query: str) -> None:
    key = await new_key(admin)
    refused = await admin.get(f"/admin/keys/{key['id']}/ledger?{query}")
    assert_openai_error(refused, 400, None, "invalid_request_error")
    assert refused.json()["error"]["param"] == query.split("=")[0]


# --- usage --------------------------------------------------------------------------------------------


async def _traffic(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """Key a: two 15s tasks on day 1 (one failed and refunded); key b: one 10s task on day 2."""
    a, b = await new_key(client, name="a"), await new_key(client, name="b")
    engine = engine_of(client)
    await add_task(engine, a["id"], model="sora-2-hd-15s-chat", at=DAY1)
    await add_task(engine, a["id"], model="sora-2-hd-15s-chat", at=DAY1, status=TaskStatus.FAILED)
    await add_task(engine, b["id"], model="sora-2-hd-10s-chat", at=DAY2)
    return a, b


def _rows(report: dict[str, Any]) -> dict[str, tuple[int, dict[str, int], str, str, str]]:
    return {
        row["group"]: (row["total_tasks"], row["tasks"], row["charged"], row["refunded"], row["net"])
        for row in report["data"]
    }


async def test_usage_by_key_model_and_day(both: httpx.AsyncClient) -> None:
    a, b = (key["id"] for key in await _traffic(both))
    by_key = (await both.get("/admin/usage?group_by=key")).json()
    assert (by_key["object"], by_key["group_by"]) == ("usage_report", "key")
    assert _rows(by_key) == {
        a: (2, {"completed": 1, "failed": 1}, "2", "1", "1"),
        b: (1, {"completed": 1}, "1", "0", "1"),
    }
    assert _rows((await both.get("/admin/usage?group_by=model")).json()) == {
        "sora-2-hd-15s-chat": (2, {"completed": 1, "failed": 1}, "2", "1", "1"),
        "sora-2-hd-10s-chat": (1, {"completed": 1}, "1", "0", "1"),
    }
    assert _rows((await both.get("/admin/usage?group_by=day")).json()) == {
        "2026-11-01": (2, {"completed": 1, "failed": 1}, "2", "1", "1"),
        "2026-11-02": (1, {"completed": 1}, "1", "0", "1"),
    }
    day2 = (await both.get("/admin/usage", params={"group_by": "day", "since": "2026-11-02"})).json()
    assert list(_rows(day2)) == ["2026-11-02"] and day2["since"] == int(datetime(2026, 11, 2, tzinfo=UTC).timestamp())
    until = await both.get("/admin/usage", params={"group_by": "model", "until": "2026-11-02T00:00:00+00:00"})
    assert list(_rows(until.json())) == ["sora-2-hd-15s-chat"]
    assert list(_rows((await both.get(f"/admin/usage?group_by=model&key_id={b}")).json())) == ["sora-2-hd-10s-chat"]
    async with engine_of(both).connect() as conn:
        assert await verify_ledger(conn) == []


@pytest.mark.parametrize("query", ["group_by=week", "since=yesterday", "until=2026-13-01"])
async def test_bad_usage_queries(admin: httpx.AsyncClient, query: str) -> None:
    assert_openai_error(await admin.get(f"/admin/usage?{query}"), 400, None, "invalid_request_error")


# --- a key's own billing view -----------------------------------------------------------------------


async def test_a_key_reads_its_own_usage(admin: httpx.AsyncClient) -> None:
    a, b = await _traffic(admin)
    others = await admin.get("/v1/dashboard/billing/usage?end_date=2026-11-02", headers={"Authorization": b["secret"]})
    assert others.json() == {"object": "list", "total_usage": 0.0, "daily_costs": []}
    own = {"Authorization": f"Bearer {a['secret']}"}
    usage = await admin.get("/v1/dashboard/billing/usage?start_date=2026-11-01&end_date=2026-11-03", headers=own)
    assert usage.json() == {
        "object": "list",
        "total_usage": 100.0,
        "daily_costs": [
            {
                "timestamp": DAY1.replace(hour=0).timestamp(),
                "line_items": [{"name": "sora-2-hd-15s-chat", "cost": 100.0}],
            }
        ],
    }
    outside = await admin.get("/dashboard/billing/usage?start_date=2026-11-02&end_date=2026-11-03", headers=own)
    assert outside.json()["total_usage"] == 0.0
    subscription = (await admin.get("/v1/dashboard/billing/subscription", headers=own)).json()
    assert (subscription["object"], subscription["hard_limit_usd"], subscription["access_until"]) == (
        "billing_subscription",
        10.0,
        0,
    )
    grants = (await admin.get("/v1/dashboard/billing/credit_grants", headers=own)).json()
    assert (grants["total_granted"], grants["total_used"], grants["total_available"]) == (10.0, 1.0, 9.0)
    balance = (await admin.get("/v1/dashboard/billing/balance", headers=own)).json()
    assert (balance["balance"], balance["total_used"]) == ("9", "1")


@pytest.mark.parametrize(
    "query", ["start_date=2026-11-31", "end_date=soon", "start_date=2026-11-03&end_date=2026-11-01"]
)
async def test_bad_usage_dates(admin: httpx.AsyncClient, query: str) -> None:
    secret = (await new_key(admin))["secret"]
    refused = await admin.get(f"/v1/dashboard/billing/usage?{query}", headers={"Authorization": secret})
    assert_openai_error(refused, 400, None, "invalid_request_error")


async def test_billing_needs_a_key(admin: httpx.AsyncClient) -> None:
    for path in ("balance", "subscription", "usage", "credit_grants"):
        refused = await admin.get(f"/v1/dashboard/billing/{path}", headers={"Authorization": "Bearer sk-nothing"})
        assert_openai_error(refused, 401, "invalid_api_key")

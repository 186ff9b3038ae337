"""The published contract without a server: the promotion event's JSON Schema round-trips every
built-in scenario's promotions (a promotion entry plus ``version`` is a valid body, checked by
an independent JSON Schema validator), ``twin serve schema`` prints it, ``twin serve keys``
prints a key once and stores its hash, bad ``twin serve`` arguments exit 2 before anything
starts, and ``twin --help`` does not load the web stack."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from promotwin.scenarios import library_names, load_scenario
from promotwin.service.app import RateLimit
from promotwin.service.db import ServiceStore
from promotwin.service.models import PromotionEvent, promotion_schema


def twin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promotwin.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.parametrize("name", library_names())
def test_every_library_promotion_plus_version_is_a_valid_event(name: str) -> None:
    schema = promotion_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for p in load_scenario(name).promotions:
        body = {**p.model_dump(mode="json"), "version": 3}
        jsonschema.validate(body, schema)
        assert PromotionEvent.model_validate(body).promotion() == p  # round trip


def test_schema_refuses_what_the_model_refuses() -> None:
    schema = promotion_schema()
    p = load_scenario("appliance_promo").promotions[0].model_dump(mode="json")
    for bad in (
        {**p},
        {**p, "version": 0},
        {**p, "version": 1, "depth": 1.0},
        {**p, "version": 1, "x": 1},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
        with pytest.raises(ValidationError):
            PromotionEvent.model_validate(bad)


def test_twin_serve_schema_prints_it() -> None:
    done = twin("serve", "schema")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == promotion_schema()
    assert "version" in json.loads(done.stdout)["required"]


def test_keys_create_prints_once_list_shows_no_secret_revoke(tmp_path: Path) -> None:
    store = str(tmp_path / "keys.sqlite")
    made = twin("serve", "keys", "create", "--name", "ana", "--role", "approver", "--limit",
                "supply_chain=5000", "--store", store)  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = next(w for w in made.stdout.split() if w.startswith("ptk_"))
    key_id, secret = token.split("_")[1], token.split("_", 2)[2]
    s = ServiceStore(store)
    assert s.authenticate(token) is not None and s.authenticate(token + "x") is None
    s.close()
    listed = twin("serve", "keys", "list", "--store", store)
    assert key_id in listed.stdout and "approver" in listed.stdout and secret not in listed.stdout
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("keys.sqlite*"))
    assert (
        secret.encode() not in raw and hashlib.sha256(secret.encode()).hexdigest().encode() in raw
    )
    assert twin("serve", "keys", "revoke", key_id, "--store", store).returncode == 0
    assert ServiceStore(store).authenticate(token) is None
    again = twin("serve", "keys", "revoke", key_id, "--store", store)
    assert again.returncode == 2 and "no active key" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--scenario"),
        (("--scenario", "nope"), "nope"),
        (("--scenario", "appliance_promo", "--port", "0"), "--port"),
        (("--scenario", "appliance_promo", "--policy", "magic"), "magic"),
        (("--scenario", "appliance_promo", "--webhook", "ftp://x"), "--webhook"),
        (("--scenario", "appliance_promo", "--webhook", "http://127.0.0.1:9/h"), "SECRET"),
        (("--scenario", "appliance_promo", "--store", "/proc/nope/x.sqlite"), "--store"),
    ],
)
def test_bad_serve_arguments_exit_2_before_serving(args: tuple[str, ...], message: str) -> None:
    done = twin("serve", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_keys_refuse_an_unknown_role_and_limits_for_a_viewer(tmp_path: Path) -> None:
    store = str(tmp_path / "k.sqlite")
    bad_role = twin("serve", "keys", "create", "--name", "x", "--role", "boss", "--store", store)
    assert bad_role.returncode == 2 and "--role" in bad_role.stderr
    limits = twin("serve", "keys", "create", "--name", "x", "--role", "viewer", "--limit",
                  "finance=1", "--store", store)  # fmt: skip
    assert limits.returncode == 2 and "--limit" in limits.stderr


def test_twin_help_loads_no_web_stack() -> None:
    code = "import json, sys, promotwin.cli.main; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in json.loads(done.stdout)}
    assert not {"fastapi", "uvicorn", "httpx", "starlette"} & loaded
    assert "promotwin" in loaded  # the probe sees what was imported


def test_rate_limit_bucket_refills_at_the_rate() -> None:
    limit = RateLimit(rate=10.0, burst=3)
    assert [limit.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limit.take("k")
    assert 0.05 < wait <= 0.1  # one token every 1/10 s
    assert limit.take("other") == 0.0


def test_events_are_deduplicated_by_id_on_either_database(store_url: str) -> None:
    from promotwin.service import db

    store = db.ServiceStore(store_url)
    rows = [
        {"event_id": f"e{i}", "date": "2026-05-10", "location": "N01", "sku": "FAN-01"}
        | {"channel": "walk_in", "units": i}
        for i in range(10)
    ]
    with store.begin() as conn:
        assert store.insert_new(conn, db.sales, rows[:6]) == 6
    with store.begin() as conn:  # 4 new, 6 resent, one of them twice in the batch
        assert store.insert_new(conn, db.sales, [*rows, rows[0]]) == 4
    assert store.counts()["service_sales"] == 10
    store.close()


def test_serve_yaml_options_override_the_file_field_by_field(tmp_path: Path) -> None:
    from promotwin.service.config import load

    config = tmp_path / "serve.yaml"
    config.write_text(
        "scenario: appliance_promo\nport: 9001\nstore: a.sqlite\n"
        "limits: {rate_per_second: 5, max_body_bytes: 1000}\nthresholds: {replan_seconds: 30}\n"
    )
    s = load(config, {"port": 9002, "rate_limit": 7.0})
    assert (s.port, s.store, s.scenario) == (9002, "a.sqlite", "appliance_promo")
    assert (s.limits.rate_per_second, s.limits.max_body_bytes, s.rate_burst) == (7.0, 1000, 14)
    assert (s.thresholds.replan_seconds, s.thresholds.replan_lines) == (30.0, 20_000)
    assert load(None, {}).host == "127.0.0.1"  # loopback unless configured


def test_bad_serve_yaml_names_each_field_as_given_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text(
        "scenario: appliance_promo\nport: 0\nlimits: {rate_per_second: 0}\n"
        "webhooks: {urls: ['ftp://x']}\ncolour: red\n"
    )
    done = twin("serve", "--config", str(config), "--port", "70000")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    err = " ".join(done.stderr.split())  # rich wraps long lines
    for where in ("--port", "limits.rate_per_second", "webhooks.urls", "colour"):
        assert where in err, where
    assert f"{config}: port" not in err  # the command line's value is the one checked
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text("scenario: appliance_promo\nwebhooks: {urls: ['http://127.0.0.1:9/h'], "
                     "secret_env: MY_HOOK_SECRET}\n")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "MY_HOOK_SECRET"}
    done = twin("serve", "--config", str(hooks), env=env)
    assert done.returncode == 2 and "MY_HOOK_SECRET" in done.stderr
    for text, message in (("port: [1\n", "not valid YAML"), ("- 1\n", "mapping")):
        config.write_text(text)
        done = twin("serve", "--config", str(config))
        assert done.returncode == 2 and message in done.stderr, done.stderr
    done = twin("serve", "--config", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2 and "missing.yaml" in done.stderr and "Traceback" not in done.stderr

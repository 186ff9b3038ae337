"""Every dashboard page under Streamlit's own AppTest: set widgets, assert on what is shown."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from promotwin.testing.dashboards import (
    APP,
    approval_store,
    experiment_folder,
    quiet_streamlit,
    shadow_store,
    small_scenario_file,
)
from promotwin.workflow.config import OWNERS
from promotwin.workflow.identity import load_users

PLANNER = "pages/1_Planner.py"
LEADERSHIP = "pages/2_Leadership.py"
SHADOW = "pages/3_Shadow.py"
EXCEPTIONS = "pages/4_Exceptions_and_audit.py"


@pytest.fixture(autouse=True)
def _quiet() -> None:
    quiet_streamlit()


def page(path: str, **env: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception
    for key, value in env.items():
        at.session_state[key] = value
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest, column: str) -> pd.DataFrame:
    """The first table shown with ``column`` (AppTest does not expose dataframe keys)."""
    for d in at.dataframe:
        value = d.value
        if column in value.columns:
            return value
    raise AssertionError(f"no table with a {column!r} column")


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_home_links_every_page() -> None:
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert "Promotwin" in at.title[0].value
    links = [e.proto.page for e in at.get("page_link")]
    assert links == ["Planner", "Leadership", "Shadow", "Exceptions_and_audit", "Post-event"]


def test_planner_depth_change_moves_the_kpis() -> None:
    at = page(PLANNER)
    before = metrics(at)
    assert before["readiness score (0-100)"].endswith("/100")
    assert before["promotion fill rate"].endswith("%")
    assert all(m.delta in ("", None) for m in at.metric)  # the current plan: no change
    at.slider(key="depth").set_value(40).run()
    assert not at.exception
    after = metrics(at)
    assert after["promotion lost sales"] != before["promotion lost sales"]
    lost = {m.label: m.delta for m in at.metric}["promotion lost sales"]
    assert lost.startswith("+") and lost.endswith("units")
    assert int(after["readiness score (0-100)"].split("/")[0]) < int(
        before["readiness score (0-100)"].split("/")[0]
    )
    downloads = [e for e in at.get("download_button")]
    assert len(downloads) == 2
    assert not at.error


def test_planner_bad_settings_are_plain_words() -> None:
    at = page(PLANNER)
    at.multiselect(key="channels").set_value([]).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Pick at least one channel for the promotion."]


def test_planner_picks_the_forecaster() -> None:
    """The page plans on the forecaster picked (here the planners' own with sensing, on the
    surprise scenario): its numbers are the twin's for that forecaster, not the oracle's."""
    from promotwin.scenarios import load_scenario
    from promotwin.twin.outlook import PromoSettings, find_promotion, project

    at = page(PLANNER)
    at.selectbox(key="scenario").set_value("appliance_promo_surprise").run()
    oracle = metrics(at)["promotion lost sales"]
    at.selectbox(key="forecaster").set_value("plan").run()
    at.checkbox(key="sensing").check().run()
    assert not at.exception and not at.error
    assert any("on the plan+sensing forecast" in c.value for c in at.caption)
    scenario = load_scenario("appliance_promo_surprise")
    current = PromoSettings.of(find_promotion(scenario, scenario.promotions[0].id))
    truth = project(scenario, scenario.promotions[0].id, current, forecast="plan+sensing")
    shown = metrics(at)["promotion lost sales"]
    assert shown == f"{truth.kpis['promo_lost_sales_units']:,.0f} units" and shown != oracle
    at.selectbox(key="forecaster").set_value("gbm").run()  # a learned one needs its file
    assert not at.exception
    assert "needs --model FILE" in at.error[0].value


def test_planner_sweep_on_a_scenario_file(tmp_path: Path) -> None:
    at = page(PLANNER)
    at.text_input(key="scenario_file").set_value(str(small_scenario_file(tmp_path))).run()
    assert not at.exception and not at.error
    at.multiselect(key="sweep_depths").set_value([10, 40]).run()
    at.button(key="sweep").click().run()
    assert not at.exception
    assert len(at.get("image")) == 1  # st.pyplot: the KPI-against-depth chart
    sweep = table(at, "promotion fill rate")
    assert list(sweep["depth"]) == ["10%", "40%"]


def test_planner_scenario_switch_starts_from_the_new_promotion(tmp_path: Path) -> None:
    """The old promotion's dates and flags must not carry over into another scenario."""
    from promotwin.testing.scenarios import small_scenario

    at = page(PLANNER)
    at.slider(key="depth").set_value(55).run()
    at.checkbox(key="display").set_value(not at.checkbox(key="display").value).run()
    at.text_input(key="scenario_file").set_value(str(small_scenario_file(tmp_path))).run()
    assert not at.exception and not at.error
    promo = small_scenario().promotions[0]
    assert at.slider(key="depth").value == round(promo.depth * 100)
    assert at.date_input(key="start").value == promo.start
    assert at.date_input(key="end").value == promo.end
    assert at.checkbox(key="display").value == promo.display
    assert at.multiselect(key="channels").value == list(promo.channels)


def test_planner_missing_file_is_explained(tmp_path: Path) -> None:
    at = page(PLANNER)
    at.text_input(key="scenario_file").set_value(str(tmp_path / "nope.yaml")).run()
    assert not at.exception
    assert "not found" in at.error[0].value


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return experiment_folder(tmp_path_factory.mktemp("exp"))


def test_leadership_page(experiment: Path) -> None:
    at = page(LEADERSHIP, experiments=str(experiment.parent))
    words = " ".join(m.value for m in at.markdown)
    assert "base-stock" in words and "against order-point" in words
    assert len(at.get("image")) >= 3  # differences, trade-off, depth sweep
    at.selectbox(key="baseline").set_value("base-stock").run()
    assert not at.exception
    words = " ".join(m.value for m in at.markdown)
    assert "against base-stock" in words and "against order-point" not in words
    kpis = table(at, "change vs baseline")
    assert set(kpis.loc[kpis["policy"] == "base-stock", "change vs baseline"]) == {"baseline"}


def test_leadership_without_a_folder_says_what_to_do(tmp_path: Path) -> None:
    at = page(LEADERSHIP, experiments="")
    assert "twin compare" in at.info[0].value
    at.text_input(key="experiments").set_value(str(tmp_path)).run()
    assert not at.exception and "No experiment results" in at.warning[0].value


def test_shadow_page_degrades_without_a_store(tmp_path: Path) -> None:
    at = page(SHADOW, shadow_store="")
    assert "No shadow run store given" in at.info[0].value
    at.text_input(key="shadow_store").set_value(str(tmp_path / "none.sqlite")).run()
    assert not at.exception and "No shadow run store at" in at.info[0].value


def test_shadow_page(tmp_path: Path) -> None:
    shadow_store(tmp_path / "s.sqlite")
    at = page(SHADOW, shadow_store=str(tmp_path / "s.sqlite"))
    assert metrics(at) == {
        "shadow runs": "3",
        "ok": "2",
        "degraded": "0",
        "partial": "0",
        "failed": "1",
    }
    problems = table(at, "reason")
    assert list(problems["status"]) == ["failed"]
    diff = table(at, "qty_diff")
    assert list(diff["sku"]) == ["B", "D", "C"]
    assert any("counterfactual" in i.value for i in at.info)


def _users(path: Path) -> Path:
    """ann approves in every queue up to 10^6; vic only views."""
    users = load_users(path, missing_ok=True)
    users = users.with_user("ann", "approver", "ann's long password", dict.fromkeys(OWNERS, 1e6))
    users.with_user("vic", "viewer", "vic's long password", {}).save()
    return path


def test_exceptions_page_sign_in_approve_and_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    approval_store(tmp_path / "a.sqlite")
    monkeypatch.setenv("TWIN_USERS", str(_users(tmp_path / "users.yaml")))
    at = page(EXCEPTIONS, store=str(tmp_path / "a.sqlite"))
    assert len(table(at, "value_at_risk")) == 4
    assert "intact" in at.success[0].value
    assert not [b for b in at.button if b.key == "approve"]  # not before signing in
    at.text_input(key="user").set_value("ann")
    at.text_input(key="password").set_value("not it")
    at.button(key="sign_in").click().run()
    assert not at.exception and "sign-in failed" in at.error[0].value
    at.text_input(key="password").set_value("vic's long password")
    at.text_input(key="user").set_value("vic")
    at.button(key="sign_in").click().run()
    chosen = at.selectbox(key="decide_id").value
    at.button(key="approve").click().run()
    assert not at.exception and "role is viewer" in at.error[0].value
    at.button(key="sign_out").click().run()
    at.text_input(key="user").set_value("ann")
    at.text_input(key="password").set_value("ann's long password")
    at.button(key="sign_in").click().run()
    assert any("Signed in as ann as approver" in c.value for c in at.caption)
    at.button(key="approve").click().run()
    assert not at.exception
    assert any(f"Exception {chosen} approved by ann" in s.value for s in at.success)
    assert len(table(at, "value_at_risk")) == 3
    at.text_input(key="search").set_value("approved").run()
    audit = table(at, "seq")
    assert list(audit["actor"]) == ["ann"] and list(audit["exception_id"]) == [chosen]
    assert list(audit["detail"]) == ["as approver (signed in by password)"]


def test_a_changed_or_removed_user_applies_to_a_signed_in_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    approval_store(tmp_path / "a.sqlite")
    users_file = _users(tmp_path / "users.yaml")
    monkeypatch.setenv("TWIN_USERS", str(users_file))
    at = page(EXCEPTIONS, store=str(tmp_path / "a.sqlite"))
    at.text_input(key="user").set_value("ann")
    at.text_input(key="password").set_value("ann's long password")
    at.button(key="sign_in").click().run()
    assert any("Signed in as ann as approver" in c.value for c in at.caption)
    users = load_users(users_file)
    users.with_user("ann", "viewer", "ann's long password", {}).save()  # an admin demotes her
    at.button(key="approve").click().run()
    assert not at.exception and "role is viewer" in at.error[0].value
    assert len(table(at, "value_at_risk")) == 4
    load_users(users_file).without_user("ann").save()  # ... then removes her
    at.run()
    assert "no longer in the users file" in at.warning[0].value
    assert not [b for b in at.button if b.key == "approve"]


def test_exceptions_page_without_users_offers_no_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    approval_store(tmp_path / "a.sqlite")
    monkeypatch.delenv("TWIN_USERS", raising=False)
    at = page(EXCEPTIONS, store=str(tmp_path / "a.sqlite"))
    assert any("twin users add" in i.value for i in at.info)
    assert not [b for b in at.button if b.key in ("approve", "reject")]


def test_exceptions_page_without_a_store(tmp_path: Path) -> None:
    at = page(EXCEPTIONS, store="")
    assert "twin governance run" in at.info[0].value
    at.text_input(key="store").set_value(str(tmp_path / "x.sqlite")).run()
    assert not at.exception and "no store at" in at.info[0].value

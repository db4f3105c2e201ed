"""Upset callers routed with care, on both databases and a virtual clock (every operation is given its `now`):
an upset caller is offered first to agents with the de-escalation skill, to anyone after the fallback wait,
and at once when no de-escalation agent is on duty. Agents' roles: supervisor or agent."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy

from conftest import fresh_database, ivr_command
from ivr.config import Settings
from ivr.dialog.settings import load_voice_settings
from ivr.errors import UserError
from ivr.events import Escalation
from ivr.queue import AVAILABLE, BUSY, BadAgent, QueueStore, open_queue, queue_url
from ivr.queue.routing import CareRules
from old_schemas import made_by_old_ivr

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
WAIT = 30.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def upset_caller(**fields) -> Escalation:
    return Escalation(reason="frustration", summary="Upset about being charged twice.", frustration=0.8, **fields)


def calm_caller() -> Escalation:
    return Escalation(reason="caller_request", summary="Wants to ask about a bill.", frustration=0.1)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    yield from fresh_database(request, tmp_path, "queue.db")


@pytest.fixture
def queue(url):
    with QueueStore(url, care=CareRules(deescalation_wait_s=WAIT)) as store:
        yield store


def on_duty(store: QueueStore, name: str, skills: str, state: str = AVAILABLE) -> None:
    store.add_agent(name, f"{name}-password", skills)
    store.set_agent_state(name, state, now=T0)


def test_an_upset_caller_goes_to_the_free_deescalation_agent_not_to_the_first_agent_who_asks(queue):
    on_duty(queue, "bob", "en")
    on_duty(queue, "carol", "en,deescalation")
    calm = queue.enqueue(calm_caller(), now=at(0))
    upset = queue.enqueue(upset_caller(), now=at(1))
    assert [entry.id for entry in queue.routable(now=at(2))] == [upset.id, calm.id]  # upset is served first ...
    assert queue.take_next("bob", now=at(2)).id == calm.id  # ... but not by bob: he gets the calm caller
    assert queue.take_next("carol", now=at(3)).id == upset.id


def test_an_upset_caller_goes_to_anyone_after_the_fallback_wait(queue):
    on_duty(queue, "carol", "en,deescalation")
    on_duty(queue, "bob", "en")
    queue.take(queue.enqueue(calm_caller(), now=at(0)).id, "carol", now=at(0))  # carol is busy, still on duty
    upset = queue.enqueue(upset_caller(), now=at(10))
    assert queue.take_next("bob", now=at(10 + WAIT - 1)) is None  # kept for carol a little longer
    with pytest.raises(BadAgent, match=f"upset and is kept for a de-escalation agent for up to {WAIT:g} s"):
        queue.take(upset.id, "bob", now=at(10 + WAIT - 1))
    taken = queue.take_next("bob", now=at(10 + WAIT))
    assert (taken.id, taken.agent) == (upset.id, "bob")
    assert queue.agent("carol").state == BUSY


def test_with_no_deescalation_agent_on_duty_an_upset_caller_does_not_wait_for_one(queue):
    on_duty(queue, "bob", "en")
    queue.add_agent("carol", "carol-password", "en,deescalation")  # added, but offline: nobody to wait for
    upset = queue.enqueue(upset_caller(), now=at(0))
    assert queue.take_next("bob", now=at(1)).id == upset.id


def test_a_deescalation_agent_takes_calm_callers_too(queue):
    on_duty(queue, "carol", "en,deescalation")
    calm = queue.enqueue(calm_caller(), now=at(0))
    assert queue.take(calm.id, "carol", now=at(1)).agent == "carol"


def test_the_fallback_wait_is_a_setting_with_a_clear_refusal():
    assert CareRules.from_env({}).deescalation_wait_s == 30.0
    assert CareRules.from_env({"IVR_DEESCALATION_WAIT_S": "45"}).deescalation_wait_s == 45.0
    assert not CareRules.from_env({"IVR_DEESCALATION_WAIT_S": "0"}).kept_for_care(0.9, 0.0, care_on_duty=True)
    for wrong in ("soon", "-5", "7200"):
        with pytest.raises(UserError, match="IVR_DEESCALATION_WAIT_S is seconds from 0 to 3600"):
            CareRules.from_env({"IVR_DEESCALATION_WAIT_S": wrong})


def test_roles_supervisor_or_agent_kept_until_changed(queue):
    assert queue.add_agent("sam", "sam-password", "en", role="supervisor").supervisor
    assert queue.add_agent("sam", "new-password", "en,deescalation").role == "supervisor"  # no role: kept
    assert queue.check_agent("sam", "new-password").skills == ("deescalation", "en")
    assert queue.add_agent("bob", "bob-password", "en").role == "agent"
    assert queue.add_agent("sam", "new-password", "en", role="agent").role == "agent"
    with pytest.raises(BadAgent, match="a role is one of agent, supervisor, not 'boss'"):
        queue.add_agent("eve", "eve-password", "en", role="boss")


def test_agents_added_before_roles_existed_are_agents_after_the_upgrade(url):
    made_by_old_ivr(url, "queue")  # version 2: no role column
    engine = sqlalchemy.create_engine(url, future=True)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("INSERT INTO queue_agents (name, password_hash, skills, state, state_since) "
                                     "VALUES ('old-timer', 'x', 'en', 'offline', :at)"),
                     {"at": T0.replace(tzinfo=None)})
    engine.dispose()
    with QueueStore(url) as store:
        assert [(agent.name, agent.role) for agent in store.agents()] == [("old-timer", "agent")]


def test_ivr_agents_add_a_supervisor_with_the_deescalation_skill(tmp_path):
    env = {"IVR_VAR": str(tmp_path / "var"), "IVR_DATABASE_URL": ""}
    added = ivr_command("agents", "add", "sam", "--skills", "en,deescalation", "--role", "supervisor",
                        "--password-stdin", input="watch the whole floor\n", env=env, timeout=60)
    assert added.returncode == 0, added.stderr
    assert "supervisor sam added: skills deescalation,en" in added.stdout
    listed = ivr_command("agents", "list", env=env, timeout=60)
    assert listed.stdout.split() == ["sam", "offline", "deescalation,en", "-", "supervisor"]
    wrong = ivr_command("agents", "add", "sam", "--skills", "en", "--role", "boss", "--password-stdin",
                        input="watch the whole floor\n", env=env, timeout=60)
    assert wrong.returncode == 2 and "invalid choice: 'boss'" in wrong.stderr
    with QueueStore(queue_url(Settings(var_dir=tmp_path / "var"), env={})) as store:
        assert store.agent("sam").supervisor


def test_an_upset_caller_is_not_kept_for_a_deescalation_agent_who_cannot_take_them(queue):
    on_duty(queue, "bob", "en,billing")
    on_duty(queue, "dolores", "es,deescalation")  # de-escalation, but speaks no English
    on_duty(queue, "carol", "en,deescalation")  # English, but not billing: this caller needs billing
    upset = queue.enqueue(upset_caller(task="bill_pay"), now=at(0))
    taken = queue.take_next("bob", now=at(1))  # nobody on duty could calm *this* caller: no wait for nobody
    assert (taken.id, taken.agent) == (upset.id, "bob")


def test_an_upset_caller_is_kept_for_a_deescalation_agent_with_their_language_and_topic(queue):
    on_duty(queue, "bob", "en,billing")
    on_duty(queue, "dolores", "es,deescalation")
    on_duty(queue, "carol", "billing,en,deescalation")
    upset = queue.enqueue(upset_caller(task="bill_pay"), now=at(0))
    assert queue.take_next("bob", now=at(1)) is None
    with pytest.raises(BadAgent, match="kept for a de-escalation agent"):
        queue.take(upset.id, "bob", now=at(1))
    assert queue.take_next("carol", now=at(2)).id == upset.id


def test_the_queue_view_shows_the_same_care_rule_as_the_store(queue):
    """What bob's console says a caller needs: de-escalation only when the store would keep them for it."""
    from ivr.console.view import queue_rows

    on_duty(queue, "bob", "en,billing")
    on_duty(queue, "dolores", "es,deescalation")
    upset = queue.enqueue(upset_caller(task="bill_pay"), now=at(0))
    bob = queue.agent("bob")

    def row() -> dict:
        return queue_rows(queue.routable(now=at(1)), at(1), bob.skills, queue.care, queue.agents())[0]

    assert (row()["id"], row()["missing_skills"]) == (upset.id, [])  # dolores cannot take an English caller
    on_duty(queue, "carol", "billing,en,deescalation")
    assert row()["missing_skills"] == ["deescalation"]
    assert queue.take_next("bob", now=at(1)) is None


def test_upset_in_the_queue_is_the_dialogs_frustration_threshold(tmp_path):
    """voice.yml's frustration threshold (0.7: where the bot acknowledges it and transfers) is where the queue
    serves a caller first and keeps them for a de-escalation agent: a caller at 0.65 is not upset, one at 0.7 is."""
    settings = Settings(var_dir=tmp_path / "var")
    assert load_voice_settings(settings.dialogs_dir).frustration.threshold == 0.7
    with open_queue(settings) as queue:
        on_duty(queue, "bob", "en")
        on_duty(queue, "carol", "en,deescalation")
        impatient = queue.enqueue(Escalation(reason="caller_request", frustration=0.65), now=at(0))
        upset = queue.enqueue(Escalation(reason="caller_request", frustration=0.7), now=at(1))
        assert [entry.id for entry in queue.routable(now=at(2))] == [upset.id, impatient.id]  # upset served first
        with pytest.raises(BadAgent, match="upset and is kept for a de-escalation agent"):
            queue.take(upset.id, "bob", now=at(2))
        assert queue.take_next("bob", now=at(2)).id == impatient.id  # not upset: anyone takes them
        assert queue.take_next("carol", now=at(3)).id == upset.id


def test_a_dialog_developer_who_moves_the_threshold_moves_the_queue_with_it(tmp_path):
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / "voice.yml").write_text("frustration:\n  threshold: 0.5\n")
    with open_queue(Settings(var_dir=tmp_path / "var", dialogs_dir=dialogs)) as queue:
        on_duty(queue, "bob", "en")
        on_duty(queue, "carol", "en,deescalation")
        upset = queue.enqueue(Escalation(reason="caller_request", frustration=0.55), now=at(0))
        assert queue.take_next("bob", now=at(1)) is None
        assert queue.take_next("carol", now=at(1)).id == upset.id

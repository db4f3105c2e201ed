"""The call's side of the survey after an agent's call, on the virtual clock (tests/call_harness.py): a caller
put through to an agent's phone on a line that gives callers back comes back to the call when the agent hangs
up first, and the dialog is told ("/agent_done"); the record keeps the score with the escalated call and leaves
the time with the agent out of the bot's seconds. A call not drawn for the survey ends at the put-through."""
from __future__ import annotations

import asyncio

import pytest

from call_harness import FRAME, Dialog, Line, Recognizer, run_call
from ivr.call import AGENT_DONE, Backstage
from ivr.dialog.agent import DialogReply
from ivr.dialog.settings import HoldSettings, SurveySettings
from ivr.events import AudioChunk, Escalation, Expectation, Prompt
from ivr.masking import Seal
from ivr.queue import TAKEN, QueueStore

AGENT_HANGS_UP_AT = 100.0  # on the call's clock; the agent takes the caller at 20 s


class AgentLine(Line):
    """A line whose agent answers at once and hangs up first at AGENT_HANGS_UP_AT (the line's
    GivesCallersBack: a caller put through to come back is the call's again then)."""

    def __post_init__(self):
        super().__post_init__()
        self.put_through: list[tuple[float, bool]] = []  # (when, come_back)

    async def hand_over(self, address: str, come_back: bool = False) -> bool:
        self.put_through.append((self.now(), come_back))
        return True

    async def back_from_agent(self) -> None:
        await asyncio.sleep(AGENT_HANGS_UP_AT - self.now())


def call_with_agent(tmp_path, share: float):
    """The caller keys 0 for a person at 6 s (keys: the caller's words are not what is tested here) and 4 at the
    survey question, if asked."""
    store = QueueStore(f"sqlite:///{tmp_path / 'queue.db'}")
    store.add_agent("ana", "correct horse battery", "en,billing", sip_address="sip:ana@127.0.0.1:5070")
    line = AgentLine(AudioChunk(b"", 16000), keys_at=[(6.0, "0#"), (AGENT_HANGS_UP_AT + 8.0, "4")], hangs_up_at=130.0)
    question = Prompt("Thank you for talking with our agent. On a scale of 1 to 5?", "utter_ask_satisfaction_agent",
                      Expectation("digits", 1), barge_in=False)
    dialog = Dialog(DialogReply([Prompt("How can I help?", "utter_greet")]), {
        "0": DialogReply([Prompt("Connecting you.", "utter_transfer", barge_in=False)],
                                                  escalation=Escalation("caller_request")),
        AGENT_DONE: DialogReply([question], survey_asked=True),
        "4": DialogReply([Prompt("Thank you for your answer. Goodbye.", "utter_survey_thanks")], ended=True,
                         survey_asked=True, satisfaction=4)})
    backstage = Backstage(queue=store, hold=HoldSettings(announce_every_s=30),
                          survey=SurveySettings(share=share, after_agent=True))
    taken = (lambda loop: loop.call_at(20.0, lambda: (store.set_agent_state("ana", "available"),
                                                      store.take_next("ana"))))
    return run_call(line, dialog, Recognizer(), Seal(tmp_path), backstage, before=taken), line, dialog


def test_a_drawn_caller_whose_agent_hangs_up_first_is_asked_and_their_score_kept_with_the_escalated_call(
        tmp_path):
    result, line, dialog = call_with_agent(tmp_path, share=1.0)

    (put_through_at, come_back), = line.put_through
    assert come_back and 20.0 <= put_through_at < 30.0
    assert (pytest.approx(AGENT_HANGS_UP_AT, abs=FRAME), AGENT_DONE) in dialog.received
    assert line.said("Thank you for talking with our agent").start == pytest.approx(AGENT_HANGS_UP_AT, abs=2 * FRAME)
    assert line.said("Thank you for your answer").start == pytest.approx(AGENT_HANGS_UP_AT + 8.0, abs=2 * FRAME)
    assert (result.outcome, result.queue_outcome) == ("escalated", TAKEN)
    assert result.csat == {"asked": True, "score": 4, "by": "keypad", "agent": "ana"}
    with_agent = AGENT_HANGS_UP_AT - put_through_at
    whole = (result.ended_at - result.started_at).total_seconds()
    assert whole > AGENT_HANGS_UP_AT + 8.0  # the record ends when the call does
    assert result.seconds == pytest.approx(whole - with_agent, abs=2 * FRAME)  # the bot's part only


def test_a_call_not_drawn_ends_at_the_put_through_as_before(tmp_path):
    result, line, dialog = call_with_agent(tmp_path, share=0.0)

    (put_through_at, come_back), = line.put_through
    assert not come_back and AGENT_DONE not in [text for _, text in dialog.received]
    assert result.seconds == pytest.approx(put_through_at, abs=2 * FRAME) and result.csat is None
    assert (result.outcome, result.queue_outcome) == ("escalated", TAKEN)

"""What Rasa's own validation lets through and `ivr train` or a call then trips on: rules and stories
naming intents, responses, actions, slots or forms the domain does not have; intents with no
examples; no NLU data at all. Each finding is (file, line, message), at the step that names it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from ivr.dialog.settings import line_of

# Sent by the call itself ("/no_input", "/frustrated", "/dead_air", "/agent_done"), never said: no examples by
# design.
SENT_BY_THE_CALL = {"no_input", "frustrated", "dead_air", "agent_done"}
RASA_INTENTS = {"nlu_fallback", "session_start", "restart", "back", "out_of_scope"}
RASA_ACTIONS = {"action_listen", "action_restart", "action_session_start", "action_default_fallback",
                "action_deactivate_loop", "action_revert_fallback_events", "action_default_ask_affirmation",
                "action_default_ask_rephrase", "action_two_stage_fallback", "action_unlikely_intent", "action_back",
                "action_extract_slots", "...", "action_send_text"}


def structure_problems(parsed: dict[Path, Any], domain: Any) -> list[tuple[Path, int, str]]:
    if not isinstance(domain, dict):
        return []
    names = _names(domain)
    found: list[tuple[Path, int, str]] = []
    examples: dict[str, int] = {}
    for path, data in parsed.items():
        if not isinstance(data, dict) or "domain.yml" == path.name:
            continue
        for block in data.get("nlu") or []:
            if isinstance(block, dict) and block.get("intent"):
                lines = [l for l in str(block.get("examples") or "").splitlines() if l.strip().startswith("- ")]
                examples[block["intent"]] = examples.get(block["intent"], 0) + len(lines)
        for key in ("rules", "stories"):
            for block in data.get(key) or []:
                if isinstance(block, dict):
                    found.extend((path, line, message) for line, message in _block_problems(block, names))
    nlu_files = [p for p, d in parsed.items() if isinstance(d, dict) and d.get("nlu") is not None]
    if not examples:
        where = nlu_files[0] if nlu_files else next(iter(parsed), Path("dialogs"))
        found.append((where, 1, "no NLU examples at all: the bot would understand nothing"))
        return found
    intents = domain.get("intents") or []
    for index, intent in enumerate(intents):
        name = intent if isinstance(intent, str) else next(iter(intent), "") if isinstance(intent, dict) else ""
        if name and name not in SENT_BY_THE_CALL and not examples.get(name):
            found.append((Path("domain.yml"), _item_line(intents, index), f"intent '{name}' has no examples in the NLU data"))
    return found


def _names(domain: dict) -> dict[str, set[str]]:
    intents = {i if isinstance(i, str) else next(iter(i)) for i in domain.get("intents") or [] if i}
    responses = set(domain.get("responses") or {})
    forms = set(domain.get("forms") or {})
    actions = set(domain.get("actions") or []) | responses | forms | RASA_ACTIONS
    return {"intent": intents | RASA_INTENTS, "action": actions, "slot": set(domain.get("slots") or {}) | {"requested_slot"},
            "active_loop": forms, "response": responses}


def _block_problems(block: dict, names: dict[str, set[str]]) -> Iterator[tuple[int, str]]:
    title = block.get("rule") or block.get("story") or "?"
    for step in [*(block.get("condition") or []), *(block.get("steps") or [])]:
        yield from _step_problems(step, names, title)


def _step_problems(step: Any, names: dict[str, set[str]], title: str) -> Iterator[tuple[int, str]]:
    if not isinstance(step, dict):
        return
    for alternative in step.get("or") or []:
        yield from _step_problems(alternative, names, title)
    line = line_of(step)
    intent, action, loop = step.get("intent"), step.get("action"), step.get("active_loop", None)
    if intent and intent not in names["intent"]:
        yield line, f"'{title}': intent '{intent}' is not in domain.yml"
    if action and action not in names["action"]:
        kind = "response" if str(action).startswith("utter_") else "action"
        yield line, f"'{title}': {kind} '{action}' is not in domain.yml"
    if loop and loop not in names["active_loop"]:
        yield line, f"'{title}': form '{loop}' is not in domain.yml"
    for slot in step.get("slot_was_set") or []:
        name = next(iter(slot)) if isinstance(slot, dict) else slot
        if name not in names["slot"]:
            yield line, f"'{title}': slot '{name}' is not in domain.yml"


def _item_line(sequence: Any, index: int) -> int:
    try:
        return sequence.lc.item(index)[0] + 1
    except (AttributeError, KeyError, IndexError):
        return 0

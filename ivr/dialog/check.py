"""`ivr dialogs check`: every dialog file validated before any training, reported as file:line: problem."""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from ivr.dialog.settings import DialogError, line_of, load_yaml, problems_in
from ivr.dialog.structure import structure_problems

# Sent by the call loop ("/no_input", "/frustrated", "/dead_air", "/agent_done"), never typed or spoken: no NLU
# examples by design.
BY_DESIGN = re.compile(r"'(no_input|frustrated|dead_air|agent_done)'.*(not found in the NLU training data|no examples)",
                       re.S)
# Rasa's findings that ivr.dialog.structure reports itself, at the step's own file and line.
REPORTED_BY_US = re.compile(r"is used in the stories, but is not a valid utterance action|is used in the '.*' block, "
                            r"but it is not listed in the domain file|is listed in the domain file, but is not found "
                            r"in the NLU training data", re.S)


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int
    message: str
    warning: bool = False  # printed, but does not fail the check or block training

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {'warning: ' if self.warning else ''}{self.message}"


def yaml_files(dialogs_dir: Path) -> list[Path]:
    return sorted(p for p in dialogs_dir.rglob("*.yml") if ".rasa" not in p.parts)


def check_dialogs(dialogs_dir: Path) -> list[Problem]:
    problems: list[Problem] = []
    parsed = {}
    for path in yaml_files(dialogs_dir):
        try:
            parsed[path] = load_yaml(path)
        except DialogError as exc:
            problems.append(_from_message(str(exc), path))
    if problems:
        return problems  # Rasa would only repeat the syntax errors less precisely
    problems.extend(_voice_problems(dialogs_dir, parsed))
    domain = parsed.get(dialogs_dir / "domain.yml") or {}
    problems.extend(Problem(dialogs_dir / path if not path.is_absolute() else path, line, message)
                    for path, line, message in structure_problems(parsed, domain))
    spoken = _spoken_by_actions()
    problems.extend(p for p in _rasa_problems(dialogs_dir)
                    if not _used_by_actions(p, spoken) and not REPORTED_BY_US.search(p.message))
    return [_in_domain(p, dialogs_dir / "domain.yml", domain) for p in problems]


def _spoken_by_actions() -> tuple[set[str], list[re.Pattern]]:
    """Responses our rasa_sdk actions utter: names written out, and names they put together
    (f"utter_help_{slot}", f"{prompt}_rephrase"). Rasa cannot see these; its 'not used' warning is wrong for them."""
    names: set[str] = set()
    patterns: list[re.Pattern] = []
    for source in (Path(__file__).parent.parent / "actions").glob("*.py"):
        text = source.read_text()
        names.update(re.findall(r'"(utter_\w+)"', text))
        for template in re.findall(r'f"([\w{}.]*\{[^"]*)"', text):
            if "utter_" in template or re.fullmatch(r"\{\w+\}_\w+", template):  # utter_… or {prompt}_rephrase
                patterns.append(re.compile(re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(template))))
    return names, patterns


def _used_by_actions(problem: Problem, spoken: tuple[set[str], list[re.Pattern]]) -> bool:
    named = re.search(r"utterance '(\w+)' is not used", problem.message)
    names, patterns = spoken
    return bool(named) and (named.group(1) in names or any(p.fullmatch(named.group(1)) for p in patterns))


def _in_domain(problem: Problem, domain_path: Path, domain) -> Problem:
    """Point a Rasa finding that names an intent, response or slot at its line in domain.yml."""
    named = re.search(r"(?:intent|utterance|slot|action|response) '(\w+)'", problem.message)
    if problem.line or not named or not isinstance(domain, dict):
        return problem
    for section in ("responses", "slots", "forms", "intents", "actions"):
        entries = domain.get(section)
        if isinstance(entries, dict) and named.group(1) in entries:
            return Problem(domain_path, line_of(entries, named.group(1)), problem.message, problem.warning)
        if isinstance(entries, list) and named.group(1) in entries:
            return Problem(domain_path, entries.lc.item(entries.index(named.group(1)))[0] + 1, problem.message,
                           problem.warning)
    return problem


def _from_message(message: str, path: Path) -> Problem:
    match = re.match(r"(.+?):(\d+): (.*)", message, re.S)
    return Problem(path, int(match.group(2)), match.group(3)) if match else Problem(path, 0, message)


def _voice_problems(dialogs_dir: Path, parsed: dict) -> list[Problem]:
    path = dialogs_dir / "voice.yml"
    data = parsed.get(path)
    if data is None:
        return []
    found = [Problem(path, line, message) for line, message in problems_in(path, data)]
    responses = set((parsed.get(dialogs_dir / "domain.yml") or {}).get("responses") or {})
    prompts = data.get("prompts") or {} if isinstance(data, dict) else {}
    for name in prompts:
        if name not in responses:
            found.append(Problem(path, line_of(prompts, name), f"prompt {name} is not a response in domain.yml"))
    intents = set((parsed.get(dialogs_dir / "domain.yml") or {}).get("intents") or [])
    hints = data.get("hints") or {} if isinstance(data, dict) else {}
    for name in hints.get("intents") or [] if isinstance(hints.get("intents"), list) else []:
        if name not in intents:
            found.append(Problem(path, line_of(hints, "intents"), f"hints: intent {name} is not in domain.yml"))
    endpointing = data.get("endpointing") or {} if isinstance(data, dict) else {}
    early = endpointing.get("answered_free_intents") if isinstance(endpointing, dict) else None
    for name in early if isinstance(early, list) else []:
        if name not in intents:
            found.append(Problem(path, line_of(endpointing, "answered_free_intents"),
                                 f"endpointing.answered_free_intents: intent {name} is not in domain.yml"))
    return found


def _rasa_problems(dialogs_dir: Path) -> list[Problem]:
    """Rasa's own `rasa data validate`, run in-process; its findings name the file where Rasa says it."""
    from rasa.shared.exceptions import RasaException
    from rasa.shared.importers.importer import TrainingDataImporter
    from rasa.validator import Validator

    config, domain, data = dialogs_dir / "config.yml", dialogs_dir / "domain.yml", dialogs_dir / "data"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importer = TrainingDataImporter.load_from_config(str(config), str(domain), [str(data)])
            validator = Validator.from_importer(importer)
    except RasaException as exc:
        return [_from_rasa(str(exc), dialogs_dir)]
    checks = [validator.verify_domain_validity, lambda: validator.verify_intents_in_stories(True),
              lambda: validator.verify_utterances_in_stories(True), validator.verify_forms_in_stories_rules,
              validator.verify_actions_in_stories_rules, lambda: validator.verify_story_structure(True),
              validator.verify_form_slots, validator.verify_slot_mappings]
    problems: list[Problem] = []
    for check in checks:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                passed = check()
            except RasaException as exc:
                passed, caught = False, [*caught, warnings.WarningMessage(str(exc), UserWarning, "rasa", 0)]
        findings = [_from_rasa(str(w.message), dialogs_dir, warning=passed) for w in caught if _is_finding(w)]
        if not passed and not findings:
            findings = [Problem(dialogs_dir, 0, "Rasa's validation failed; run `rasa data validate` for details")]
        problems.extend(findings)
    return problems


def _is_finding(caught: warnings.WarningMessage) -> bool:
    text = str(caught.message)
    return "rasa" in (caught.filename or "") and not BY_DESIGN.search(text) and issubclass(
        caught.category, UserWarning) and "deprecat" not in text.lower()


def _from_rasa(message: str, dialogs_dir: Path, warning: bool = False) -> Problem:
    named = re.search(r"'?([^'\s]+\.ya?ml)'?(?:[^0-9]{0,40}line (\d+))?", message)
    path = Path(named.group(1)) if named else dialogs_dir
    line = int(named.group(2)) if named and named.group(2) else 0
    return Problem(path, line, " ".join(message.split()), warning)

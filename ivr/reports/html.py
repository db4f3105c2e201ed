"""The KPI report as one self-contained HTML page: figures in tables, plots as PNG data URIs.

It reads in a browser with no network: no scripts, no external styles, fonts or images, and a content
security policy that forbids fetching anything.
"""
from __future__ import annotations

import base64
import html
import io
from typing import Any, Callable, Dict, List, Optional

from matplotlib.figure import Figure

_COLOURS = {"self_served": "#2e7d32", "ended": "#81c784", "abandoned": "#bdbdbd", "escalated": "#e65100",
            "contained": "#2e7d32", "no_input": "#6d4c41", "no_match": "#ffb300", "bar": "#1565c0"}
_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 64em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 2em; }
.when { color: #666; margin-top: 0; }
.tiles { display: flex; flex-wrap: wrap; gap: 1em; }
.tile { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 10em; }
.tile .value { font-size: 1.6em; font-weight: bold; } .tile .label { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border-bottom: 1px solid #eee; padding: 0.3em 0.8em; }
th { text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
.note { color: #666; font-size: 0.9em; }
dt { font-weight: 600; color: #333; margin-top: 0.5em; } dd { margin-left: 1.5em; }
"""


def render(figures: Dict[str, Any], title: str, period: str) -> str:
    """The report page for `figures` (from ivr.reports.kpis), headed `title`, for `period` (e.g. "since …")."""
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        f"<title>{_text(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_text(title)}</h1><p class=\"when\">{_text(period)}</p>",
        _tiles(figures),
        _section("Calls", figures["calls"], "no calls in this period",
                 lambda: [_plot(_outcomes_plot, figures), _plot(_per_day_plot, figures)]),
        _section("Completion per task", figures["tasks"], "no call got as far as a task",
                 lambda: [_tasks_table(figures), _plot(_tasks_plot, figures)]),
        _section("Escalations by reason", figures["escalations_by_reason"], "no call was handed to an agent",
                 lambda: [_reasons_table(figures), _plot(_reasons_plot, figures)]),
        _section("Agents and the queue", figures["queued"], "no caller was queued for an agent",
                 lambda: [_queue_table(figures), _plot(_waits_plot, figures)]),
        _section("First-call resolution", _resolution_counted(figures), "no call with a task was kept by the bot "
                 "or wrapped up by an agent", lambda: [_resolution_table(figures)]),
        _section("Customer satisfaction", figures["csat"]["asked"], "no caller was asked the survey",
                 lambda: [_csat_table(figures)]),
        _section("Junk calls", figures["junk_calls"]["calls"], "no dead-air or prank calls",
                 lambda: [_junk_table(figures)]),
        _section("Prompts callers could not answer", figures["prompts"],
                 "every prompt was answered: no no-input and no no-match",
                 lambda: [_prompts_table(figures), _plot(_prompts_plot, figures)]),
        _glossary(figures),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part)


# --- figures as text -------------------------------------------------------------------------------------------

def _glossary(f: Dict[str, Any]) -> str:
    terms = "".join(f"<dt>{_text(term)}</dt><dd>{_text(meaning)}</dd>" for term, meaning in f["glossary"].items())
    return f'<h2>What the figures mean</h2><dl class="note">{terms}</dl>' + (
        f'<p class="note">Service-level time: {f["service_level_seconds"]:g} s. Repeat-call window: '
        f'{f["first_call_resolution"]["window_days"]:g} days.</p>')


def _tiles(f: Dict[str, Any]) -> str:
    tiles = [("calls", str(f["calls"])), ("containment", _percent(f["containment_rate"])),
             ("task completion", _percent(f["task_completion_rate"])),
             ("abandoned in the bot", _percent(f["abandoned_in_bot_rate"])),
             ("bot handle time", _seconds(f["bot_handle_time_s"])),
             ("agent handle time", _seconds(f["agent_handle_time_s"])),
             ("average speed of answer", _seconds(f["average_speed_of_answer_s"])),
             (f"service level ({f['service_level_seconds']:g} s)", _percent(f["service_level"])),
             ("abandoned in queue", _percent(f["abandonment_rate"])),
             ("callbacks", str(f["callbacks"]["requested"])),
             ("first-call resolution, bot", _percent(f["first_call_resolution"]["bot"]["rate"])),
             ("first-call resolution, agents", _percent(f["first_call_resolution"]["agents"]["rate"])),
             ("CSAT (1 to 5)", _score(f["csat"]["average"])), ("junk calls", str(f["junk_calls"]["calls"]))]
    return '<div class="tiles">' + "".join(
        f'<div class="tile"><div class="value">{_text(value)}</div><div class="label">{_text(label)}</div></div>'
        for label, value in tiles) + "</div>"


def _tasks_table(f: Dict[str, Any]) -> str:
    return _table(("task", "started", "completed in the bot", "completion"),
                  [(t["name"], t["attempted"], t["completed"], _percent(t["completion_rate"]))
                   for t in f["tasks"].values()])


def _reasons_table(f: Dict[str, Any]) -> str:
    return _table(("reason", "calls"), list(f["escalations_by_reason"].items()))


def _queue_table(f: Dict[str, Any]) -> str:
    callbacks = f["callbacks"]
    return _table(("", ""), [
        ("callers queued", f["queued"]), ("on the line, taken by an agent", f["answered"]),
        ("abandoned while waiting", f"{f['abandoned_in_queue']} ({_percent(f['abandonment_rate'])})"),
        ("average speed of answer", _seconds(f["average_speed_of_answer_s"])),
        (f"service level (taken within {f['service_level_seconds']:g} s)", _percent(f["service_level"])),
        ("agent handle time", _seconds(f["agent_handle_time_s"])),
        ("callbacks requested / returned / still waiting",
         f"{callbacks['requested']} / {callbacks['returned']} / {callbacks['waiting']}"),
        ("average wait for a returned callback", _seconds(callbacks["average_wait_s"]))])


def _resolution_counted(f: Dict[str, Any]) -> int:
    fcr = f["first_call_resolution"]
    return fcr["bot"]["calls"] + fcr["agents"]["calls"]


def _resolution_table(f: Dict[str, Any]) -> str:
    fcr = f["first_call_resolution"]
    rows = [(who, fcr[key]["calls"], fcr[key]["resolved"], _percent(fcr[key]["rate"]))
            for who, key in (("the bot", "bot"), ("agents", "agents"))]
    return _table(("served by", "calls with a task", "resolved at first call", "first-call resolution"), rows) + (
        f'<p class="note">{fcr["repeat_calls"]} repeat calls from {fcr["repeat_callers"]} callers who called again '
        f'about the same task within {fcr["window_days"]:g} days.</p>')


def _csat_table(f: Dict[str, Any]) -> str:
    survey = f["csat"]
    rows = [("all calls", survey), ("about the bot", survey["bot"]), ("about agents", survey["agents"]),
            *((f"task: {task['name']}", task) for task in survey["by_task"].values()),
            *((f"agent: {agent}", of_agent) for agent, of_agent in survey["by_agent"].items())]
    return _table(("", "average (1 to 5)", "answers", "asked", "response rate"),
                  [(label, _score(s["average"]), s["answered"], s["asked"], _percent(s["response_rate"]))
                   for label, s in rows])


def _junk_table(f: Dict[str, Any]) -> str:
    junk = f["junk_calls"]
    spared = junk["agent_minutes_spared"]
    return _table(("", ""), [("dead air", junk["dead_air"]), ("prank", junk["prank"]),
                             ("agent minutes spared", "–" if spared is None else f"{spared:.1f} min")])


def _prompts_table(f: Dict[str, Any]) -> str:
    return _table(("prompt", "no-input", "no-match", "turns", "failed"),
                  [(p["name"], p["no_input"], p["no_match"], p["turns"],
                    _percent(p["failure_rate"])) for p in f["prompts"]])


def _section(heading: str, present, empty: str, body: Callable[[], List[str]]) -> str:
    """The section's tables and plots when there is something to show (`present`), else the `empty` sentence."""
    inside = "".join(body()) if present else f'<p class="note">{_text(empty)}</p>'
    return f"<h2>{_text(heading)}</h2>{inside}"


def _table(header, rows) -> str:
    head = "".join(f"<th>{_text(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f'<td class="n">{cell}</td>' if isinstance(cell, (int, float))
                                    else f"<td>{_text(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _text(value) -> str:
    return html.escape(str(value))


def _percent(share: Optional[float]) -> str:
    return "–" if share is None else f"{share * 100:.1f} %"


def _score(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f}"


def _seconds(value: Optional[float]) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


# --- plots ------------------------------------------------------------------------------------------------------

def _plot(draw: Callable[[Figure, Dict[str, Any]], str], figures: Dict[str, Any]) -> str:
    """`draw` on a fresh figure, as an <img> carrying its PNG; `draw` returns the image's alt text."""
    figure = Figure(figsize=(8, 3.2), dpi=100)
    alt = draw(figure, figures)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{_text(alt)}" src="data:image/png;base64,{data}">'


def _outcomes_plot(figure: Figure, f: Dict[str, Any]) -> str:
    names = list(f["outcomes"])
    _bars(figure, [name.replace("_", " ") for name in names], [f["outcomes"][n] for n in names],
          [_COLOURS[n] for n in names], "calls",
          f"How {f['calls']} calls ended (containment {_percent(f['containment_rate'])})")
    return "calls by outcome"


def _per_day_plot(figure: Figure, f: Dict[str, Any]) -> str:
    axes = figure.subplots()
    days = [d["day"] for d in f["calls_per_day"]]
    contained = [d["contained"] for d in f["calls_per_day"]]
    axes.bar(days, contained, color=_COLOURS["contained"], label="finished by the bot")
    axes.bar(days, [d["escalated"] for d in f["calls_per_day"]], bottom=contained, color=_COLOURS["escalated"],
             label="handed to an agent")
    axes.set_ylabel("calls")
    axes.set_title("Calls per day (UTC)")
    axes.set_ylim(0, max(d["contained"] + d["escalated"] for d in f["calls_per_day"]) * 1.3)  # room for the legend
    axes.legend(loc="upper left", ncol=2)
    axes.tick_params(axis="x", labelrotation=45 if len(days) > 7 else 0, labelsize=8)
    return "calls per day"


def _tasks_plot(figure: Figure, f: Dict[str, Any]) -> str:
    tasks = f["tasks"]
    axes = _bars(figure, [t["name"] for t in tasks.values()], [t["completion_rate"] * 100 for t in tasks.values()],
                 _COLOURS["bar"], "completed in the bot, % of tasks started", "Completion per task")
    for row, t in enumerate(tasks.values()):
        axes.text(1, row, f" {t['completed']} of {t['attempted']}", va="center", color="white")
    axes.set_xlim(0, 100)
    return "completion per task"


def _reasons_plot(figure: Figure, f: Dict[str, Any]) -> str:
    reasons = f["escalations_by_reason"]
    _bars(figure, [r.replace("_", " ") for r in reasons], list(reasons.values()), _COLOURS["escalated"], "calls",
          "Why callers were handed to an agent")
    return "escalations by reason"


def _bars(figure: Figure, labels: List[str], values: List[float], colour, xlabel: str, title: str):
    """Horizontal bars, the first label on top; returns the axes for any extras."""
    axes = figure.subplots()
    axes.barh(labels, values, color=colour)
    axes.invert_yaxis()
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    return axes


def _waits_plot(figure: Figure, f: Dict[str, Any]) -> str:
    axes = figure.subplots()
    bands = f["answer_waits"]
    labels = [f"≤ {b['up_to_s']} s" if b["up_to_s"] is not None else f"> {b['over_s']} s" for b in bands]
    threshold = f["service_level_seconds"]
    axes.bar(labels, [b["answered"] for b in bands],
             color=[_COLOURS["contained"] if b["up_to_s"] is not None and b["up_to_s"] <= threshold
                    else _COLOURS["escalated"] for b in bands])
    axes.set_ylabel("callers taken")
    axes.set_title(f"How long callers waited for an agent (service level {_percent(f['service_level'])} "
                   f"within {threshold:g} s)")
    return "waits for an agent"


def _prompts_plot(figure: Figure, f: Dict[str, Any]) -> str:
    axes = figure.subplots()
    prompts = f["prompts"]
    names = [p["name"] for p in prompts]
    no_input = [p["no_input"] for p in prompts]
    axes.barh(names, no_input, color=_COLOURS["no_input"], label="no-input")
    axes.barh(names, [p["no_match"] for p in prompts], left=no_input, color=_COLOURS["no_match"], label="no-match")
    axes.invert_yaxis()
    axes.tick_params(axis="y", labelsize=8)
    axes.set_xlabel("turns")
    axes.set_title("Prompts with the most no-input and no-match")
    axes.legend()
    return "no-input and no-match by prompt"

"""Imports point down (docs/architecture.md): transports know nothing above them, the console is a web app
the serve runtime mounts, the product never imports the tooling or the command line, and a call's result
is readable without the call."""
from pathlib import Path

from code_imports import imported_names
from conftest import ROOT

IVR = ROOT / "ivr"
ABOVE_TRANSPORTS = ("ivr.console", "ivr.serve", "ivr.cli", "ivr.tools")
# The console serves agents over the queue; the runtime that answers calls (bot, lines, switchboard) mounts it.
ABOVE_THE_CONSOLE = ("ivr.serve", "ivr.bot", "ivr.call", "ivr.transports", "ivr.cli", "ivr.tools")


def reaching(path: Path, modules: tuple[str, ...]) -> list[str]:
    """What `path` imports of `modules` or their submodules (`ivr.call` does not match `ivr.call_result`)."""
    return sorted(name for name in imported_names(path, ROOT)
                  if any(name == module or name.startswith(module + ".") for module in modules))


def test_transports_import_nothing_above_them():
    """Every transport module, SIP's and the listeners' too: the serve runtime and the console use the lines,
    never the reverse (what a line needs of a listener, ListenError and the web listener, is in transports)."""
    modules = sorted((IVR / "transports").rglob("*.py"))
    assert len(modules) > 10, "the transports were not found"
    found = {str(path.relative_to(ROOT)): above for path in modules if (above := reaching(path, ABOVE_TRANSPORTS))}
    assert not found, f"transports importing what sits above them: {found}"


def test_the_console_knows_nothing_of_the_runtime_that_serves_it():
    modules = sorted((IVR / "console").rglob("*.py"))
    assert modules, "the console was not found"
    found = {str(path.relative_to(ROOT)): above for path in modules if (above := reaching(path, ABOVE_THE_CONSOLE))}
    assert not found, f"console modules importing the serve runtime, the lines or the bot: {found}"


def test_the_serve_runtime_sits_on_top_only_the_command_line_and_the_tooling_start_it():
    found = {}
    for path in sorted(IVR.rglob("*.py")):
        if path == IVR / "cli.py" or {IVR / "serve", IVR / "tools"} & set(path.parents):
            continue
        wrong = reaching(path, ("ivr.serve",))
        if wrong:
            found[str(path.relative_to(ROOT))] = wrong
    assert not found, f"modules below the serve runtime importing it: {found}"


def test_the_product_never_imports_the_tooling_or_the_command_line():
    found = {}
    for path in sorted(IVR.rglob("*.py")):
        if path == IVR / "cli.py" or IVR / "tools" in path.parents:
            continue
        wrong = reaching(path, ("ivr.tools", "ivr.cli"))
        if wrong:
            found[str(path.relative_to(ROOT))] = wrong
    assert not found, f"product modules importing the tooling or the CLI: {found}"


def test_records_read_a_call_result_without_the_call():
    for path in sorted((IVR / "records").rglob("*.py")):
        assert not reaching(path, ("ivr.call", "ivr.cli")), path
    below = {name.split(".")[1] for name in imported_names(IVR / "call_result.py", ROOT) if name.startswith("ivr.")}
    assert below <= {"events"}, f"ivr/call_result.py must import only the typed messages, not {sorted(below)}"

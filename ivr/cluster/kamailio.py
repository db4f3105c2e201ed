"""Kamailio as `ivr cluster` runs it: deploy/kamailio/kamailio.cfg with loopback values given as -A defines,
its dispatcher list and allow list rendered for this run, in a runtime folder of its own."""
from __future__ import annotations

import ipaddress
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ivr.errors import UserError

CONFIG = Path(__file__).resolve().parent.parent.parent / "deploy" / "kamailio" / "kamailio.cfg"
SEARCHED = ("/usr/sbin", "/usr/local/sbin", "/sbin")  # Debian installs it for root's PATH only
HOW = "run `make setup` (apt-get install kamailio)"
INSTALL = f"kamailio is not installed (the SIP proxy in front of the workers): {HOW}"
WORKERS_PROBED_EVERY_S = 1  # on one machine a probe costs nothing: a dead worker is out within ~3 s


def binary(given: Optional[str] = None) -> str:
    """The kamailio program (`given`, else found on PATH or in the sbin folders), or UserError saying how
    to install it."""
    if given:
        if not shutil.which(given):
            raise UserError(f"no kamailio program at {given}: {HOW}")
        return given
    found = shutil.which("kamailio") or next(
        (str(Path(folder) / "kamailio") for folder in SEARCHED if (Path(folder) / "kamailio").is_file()), None)
    if not found:
        raise UserError(INSTALL)
    return found


@dataclass(frozen=True)
class Worker:
    name: str  # worker-1 … worker-N, in its call records and the proxy's lists
    host: str  # where its SIP and RTP listen: the proxy's own address (loopback when that is a wildcard)
    sip_port: int
    rtp_ports: str  # LOW-HIGH, its share of the cluster's range

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.sip_port}"


def render_lists(folder: Path, workers: list[Worker], trunks: list[str], callers: list[str]) -> None:
    """dispatcher.list: every worker inactive until its first probe is answered (flags 9), so no call
    goes to a worker still loading; address.list: group 1 trunks (no flood limit), group 2 callers."""
    (folder / "dispatcher.list").write_text(
        "# set destination flags priority attributes (rendered by ivr cluster)\n"
        + "".join(f"1 {worker.uri} 9 0 duid={worker.name}\n" for worker in workers))
    lines = ["# group address mask port tag (rendered by ivr cluster)"]
    for group, networks in ((1, trunks), (2, callers)):
        for index, text in enumerate(networks):
            network = ipaddress.ip_network(text, strict=False)
            lines.append(f"{group} {network.network_address} {network.prefixlen} 0 "
                         f"{'trunk' if group == 1 else 'callers'}-{index + 1}")
    (folder / "address.list").write_text("\n".join(lines) + "\n")


def command(program: str, config: Path, folder: Path, host: str, port: int) -> list[str]:
    """Foreground (-DD), logging to stderr (-E), its pid file and control socket in `folder`."""
    return [program, "-f", str(config), "-DD", "-E", "-Y", str(folder), "-P", str(folder / "kamailio.pid"),
            "-A", f"SIP_LISTEN=udp:{host}:{port}",
            "-A", f"TLS_LISTEN=tls:{host}:5061",  # used only with -A WITH_TLS: the same address as the calls'
            "-A", f'DISPATCHER_LIST="{folder / "dispatcher.list"}"',
            "-A", f'ADDRESS_LIST="{folder / "address.list"}"',
            "-A", f'CTL_SOCKET="unix:{folder / "kamailio_ctl"}"',
            "-A", f"PROBE_SECONDS={WORKERS_PROBED_EVERY_S}"]

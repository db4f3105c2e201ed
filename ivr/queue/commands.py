"""The `ivr` commands of this area (registered by ivr/cli.py): `ivr agents add` and `ivr agents list`."""
from __future__ import annotations

import getpass
import sys

from ivr.queue.model import ROLES, BadAgent


def register(commands, bench_commands) -> None:
    """Add this area's subcommands; each sets run=function(args, settings) -> exit status."""
    agents = commands.add_parser("agents", help="the people callers are handed to (var/queue.db, or IVR_DATABASE_URL)")
    actions = agents.add_subparsers(dest="agents_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add an agent, or give an existing one a new password and skills")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--skills", required=True,
                     help="language codes plus any of billing, address and deescalation (first offered upset "
                          "callers), separated by commas, e.g. billing,en,deescalation")
    add.add_argument("--role", choices=ROLES, help="agent (the default for someone new) or supervisor (also opens "
                                                   "the wallboard, /wallboard); left as it is when not given")
    add.add_argument("--sip", metavar="URI", help="where the agent's phone rings, e.g. sip:alice@127.0.0.1:5070")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input (else asked on the terminal)")
    add.set_defaults(run=_add)
    actions.add_parser("list", help="every agent: state, skills, SIP address, and supervisor for supervisors"
                       ).set_defaults(run=_list)


def _add(args, settings) -> int:
    from ivr.queue import agent_skills, open_queue

    from ivr.queue.sessions import SessionStore

    skills = agent_skills(args.skills)  # refused before the password is asked for
    password = _password(args.password_stdin)
    check_password(args.name, password)
    with open_queue(settings) as store:
        existed = any(agent.name == args.name for agent in store.agents())
        agent = store.add_agent(args.name, password, skills, sip_address=args.sip, role=args.role)
        with SessionStore(store.url()) as sessions:  # a new password signs them out everywhere
            ended = sessions.end_all(agent.name)
    where = f", rings at {agent.sip_address}" if agent.sip_address else ""
    signed_out = f"; signed out of {ended} console session(s)" if ended else ""
    print(f"{agent.role} {agent.name} {'updated' if existed else 'added'}: skills {','.join(agent.skills)}{where}"
          f"{signed_out}")
    return 0


MIN_PASSWORD = 10
COMMON = {"password123", "1234567890", "qwertyuiop", "letmein123", "changeme123", "administrator", "passw0rd123"}


def check_password(name: str, password: str) -> None:
    """The console holds callers' details: a password a guess or a list of leaked ones would not find at once."""
    problem = None
    if len(password) < MIN_PASSWORD:
        problem = f"at least {MIN_PASSWORD} characters (a few words make a good one)"
    elif name.lower() in password.lower():
        problem = "not the agent's name"
    elif len(set(password)) < 4 or password.lower() in COMMON:
        problem = "not one a list of common passwords or a single repeated key would find"
    if problem:
        raise BadAgent(f"an agent's password must be {problem}: nothing was changed")


def _list(args, settings) -> int:
    from ivr.queue import open_queue

    with open_queue(settings) as store:
        agents = store.agents()
    if not agents:
        print("no agents yet: add one with  ivr agents add NAME --skills en")
    for agent in agents:
        role = "  supervisor" if agent.supervisor else ""  # most are agents: only the exception is spelled out
        print(f"{agent.name:<20} {agent.state:<10} {','.join(agent.skills):<24} {agent.sip_address or '-'}{role}")
    return 0


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if password and getpass.getpass("password again: ") != password:
            raise BadAgent("the two passwords differ: nothing was changed")
    else:
        raise BadAgent("no terminal to ask for the password: pipe it in with --password-stdin")
    if not password:
        raise BadAgent("an agent's password cannot be empty")
    return password

"""`ivr cluster`: the deployment of many workers, composed on one machine.

Callers ring Kamailio (deploy/kamailio/kamailio.cfg, the same file a real deployment runs on its own host),
which spreads them over N `ivr serve --sip` workers on loopback ports and RTP ranges of their own, all
sharing one database (IVR_DATABASE_URL, else the SQLite files under var/). The first worker also serves
the agents' console; since every worker's callers are in the one database, it shows them all.

`kamailio.py` renders the proxy's lists and command line; `processes.py` runs a child and watches what it
says; `run.py` starts them, says when calls can be taken and stops them all together; `commands.py` is
the command's flags.
"""

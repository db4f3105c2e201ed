"""The escalation queue: callers handed to people, agents, routing, wait estimates and callbacks."""

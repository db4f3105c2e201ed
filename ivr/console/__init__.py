"""The agents' web console: a thin layer over the queue."""

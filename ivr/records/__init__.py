"""Call records: every call on any channel, for `ivr calls` and the reports."""

"""Call records: every call on any channel, for `ivr calls` and the reports."""
from ivr.records.store import (OUTCOMES, CallRecords, RecordsError, RecordsUnavailable, UnknownCall,
                               database_url)


def open_records(settings) -> CallRecords:
    """The call records `settings` point at: IVR_DATABASE_URL, else SQLite var/calls.db."""
    return CallRecords(database_url(settings))


__all__ = ["OUTCOMES", "CallRecords", "RecordsError", "RecordsUnavailable", "UnknownCall", "database_url",
           "open_records"]

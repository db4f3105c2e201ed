"""Rasa used as a library: its structlog events go through std logging (redacted, at the levels set
there, never printed straight to stdout), and Rasa's own loggers stay at warnings."""
import logging
import warnings

from ivr import logs


def quiet_rasa() -> None:
    logs.install()  # every process that loads Rasa masks its logs, whoever set up logging
    logs.structlog_into_logging()
    logging.getLogger("rasa").setLevel(logging.WARNING)
    if not logging.getLogger("ivr").isEnabledFor(logging.INFO):  # `ivr -v` keeps them
        warnings.simplefilter("ignore")

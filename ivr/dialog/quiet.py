"""Rasa used as a library leaves structlog printing its debug events to stdout; keep them at warnings."""
import logging
import warnings


def quiet_rasa() -> None:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("rasa").setLevel(logging.WARNING)
    if not logging.getLogger("ivr").isEnabledFor(logging.INFO):  # `ivr -v` keeps them
        warnings.simplefilter("ignore")

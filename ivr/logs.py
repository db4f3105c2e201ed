"""The one redaction point for logs: whatever any logger in this process writes is masked first.

Error logs are where a caller's data escapes: a failing action, a traceback, Rasa's dumps of the
tracker and its slots. So masking is not left to each log call: `install()` sets the logging
module's record factory, which every std logging record passes through whatever handler later
writes it (ours, an operator's, a test's), and routes Rasa's structlog events into std logging so
they pass through it too. Masked are: sealed tokens, the values of the slots that hold a caller's
identity or card, long hex proofs and tokens, and digit runs of PIN length and longer.
"""
from __future__ import annotations

import logging
import re
import threading

MASK = "[redacted]"
# Slots whose values identify a caller or a card (dialogs/domain.yml), as a dump writes them:
# "account_number: 4815…", "'pin': '/inform{…}'", "card_token=…", "SlotSet(key: street, value: …)",
# '"name": "street", "value": …'. An unquoted value runs to the end of its line, item or call.
PRIVATE_SLOTS = ("account_number", "pin", "card_number", "card_expiry", "card_token", "card_on_file", "identity",
                 "zip_code", "street_address", "house_number", "street", "new_address_spoken")
_SLOT_VALUE = re.compile(r"""(\b(?:%s)\b['"]?(?:,\s*['"]?value['"]?)?\s*[:=]\s*)(\[[^\]]*\]|'[^']*'|"[^"]*"|[^\n,)}]+)"""
                         % "|".join(PRIVATE_SLOTS))
_SEALED = re.compile(r"gAAAAA[A-Za-z0-9_\-]{20,}=*")  # a Fernet token: every sealed caller answer
_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{32,}(?![0-9A-Za-z])")  # identity proofs, card tokens
# Runs of 4 or more digits, alone or grouped by spaces or dashes ("4815 1623", "4 8 1 5 1 6 2 3"):
# PINs, account and card numbers. Not a traceback's line numbers, nor parts of dotted numbers (addresses,
# versions, decimals), nor a port after an address (10.0.0.5:5060), nor digits inside a word (hex call ids),
# nor a measure with its unit ("claims 65535 bytes", "1200 ms"): an operator needs those, no caller has them.
_DIGITS = re.compile(r"(?<![\w.])(?<!line )(?<!\d:)\d(?:[ -]?\d){3,}(?!\w|\.\d)(?! ?(?:bytes?|KiB|kB|MB|ms|Hz)\b)")
_lock = threading.Lock()
_installed = False


def redact(text: str) -> str:
    """`text` with every caller secret it may hold replaced by MASK."""
    text = _SLOT_VALUE.sub(lambda m: m.group(1) + MASK, text)
    text = _SEALED.sub(MASK, text)
    text = _HEX.sub(MASK, text)
    return _DIGITS.sub(MASK, text)


def install() -> None:
    """Mask every log record of this process from now on (idempotent): called where logging is set
    up (`ivr`'s main) and wherever Rasa is loaded (ivr.dialog.quiet), so no path forgets it."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def redacting(*args, **kwargs) -> logging.LogRecord:
            return _redacted(previous(*args, **kwargs))

        logging.setLogRecordFactory(redacting)
        _installed = True


def _redacted(record: logging.LogRecord) -> logging.LogRecord:
    """The message, its arguments and its traceback are rendered now and masked, so no handler or
    formatter later sees the originals."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string: logging reports it later; keep only the format
        message = str(record.msg)
    record.msg, record.args = redact(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def structlog_into_logging() -> None:
    """Rasa's structlog events (its slot and parse dumps among them) as std logging records under
    their module's logger name: one level setting, one set of handlers, and the redaction above.
    Left alone, structlog prints them straight to stdout, past every handler."""
    import structlog

    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, structlog.processors.format_exc_info,
                    structlog.processors.KeyValueRenderer(key_order=["event"])],
        logger_factory=structlog.stdlib.LoggerFactory(), wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False)

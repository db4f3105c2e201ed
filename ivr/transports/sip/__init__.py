"""The SIP line of `ivr serve --sip`: callers ring in over SIP/UDP, audio is G.711 over RTP.

The caller's side: `line.py` (the UDP listener: requests, responses, legs), `peers.py` (who may
speak, from the source address), `addresses.py` (ours as each peer reaches it), `dialog.py` (a leg
in SIP terms), `message.py` and `transactions.py` (the wire and its retransmissions), `call.py`
(the caller as the call's Transport). The agent's side: `handover.py` rings an agent's phone and
bridges the two legs; it is the line's collaborator, and uses only what `Signalling` names. Their
audio: `sdp.py` (offer and answer), `media.py` (RTP on the phone lines' pacer, symmetric), `rtp.py`,
`jitter.py` and `dtmf.py` (RFC 4733 keys and SIP INFO).

`ivr serve` finds a line's flags and listeners by module (ivr.transports.sip, from `flags.py`); they are
the line's. `ports.py` binds each call's audio (`--rtp-ports`).
"""
from ivr.transports.sip.flags import add_arguments, check, listeners, wanted
from ivr.transports.sip.line import SipLine

__all__ = ["SipLine", "add_arguments", "check", "listeners", "wanted"]

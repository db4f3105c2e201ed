"""The SIP line's parts, one job each: SIP messages, SDP offer/answer, RTP packets, keypad events,
the jitter buffer. Real bytes in, what comes out compared."""
import pytest

from ivr.transports.sip import rtp, sdp
from ivr.transports.sip.dtmf import KeypadEvents, info_key
from ivr.transports.sip.jitter import JitterBuffer
from ivr.transports.sip.message import BadMessage, address_uri, parse, parse_uri, response, tag, without_tag

# An INVITE as baresip sends it (compact Via and Content-Length forms mixed in on purpose).
INVITE = (b"INVITE sip:ivr@127.0.0.1:5060 SIP/2.0\r\n"
          b"v: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKabc;rport\r\n"
          b"Max-Forwards: 70\r\n"
          b"To: <sip:ivr@127.0.0.1:5060>\r\n"
          b"From: \"Ann\" <sip:5551234@127.0.0.1>;tag=f00\r\n"
          b"Call-ID: 1234@host\r\n"
          b"CSeq: 7 INVITE\r\n"
          b"Subject: a folded\r\n  header\r\n"
          b"Content-Type: application/sdp\r\n"
          b"l: 13\r\n\r\n"
          b"v=0\r\nxxxxxx\r\nextra bytes past the length")


def test_a_request_reads_with_compact_and_folded_headers_and_a_body_cut_at_its_length():
    message = parse(INVITE)
    assert (message.method, message.uri) == ("INVITE", "sip:ivr@127.0.0.1:5060")
    assert message.branch == "z9hG4bKabc" and message.cseq == (7, "INVITE") and message.call_id == "1234@host"
    assert message.get("subject") == "a folded header"
    assert message.body == b"v=0\r\nxxxxxx\r\n"
    assert tag(message.get("From")) == "f00" and parse_uri(address_uri(message.get("From"))).user == "5551234"
    again = parse(bytes(message))
    assert again.headers == message.headers and again.body == message.body


def test_a_response_copies_via_from_call_id_cseq_and_adds_our_tag_to():
    answer = parse(bytes(response(parse(INVITE), 486, "Busy Here", to_tag="t1")))
    assert (answer.status, answer.reason) == (486, "Busy Here")
    assert answer.branch == "z9hG4bKabc" and tag(answer.get("To")) == "t1" and answer.cseq == (7, "INVITE")
    assert without_tag(answer.get("From")) == '"Ann" <sip:5551234@127.0.0.1>'


@pytest.mark.parametrize("data", [
    b"", b"\x00\xff" * 40, b"HELLO WORLD\r\n\r\n", b"INVITE sip:x SIP/3.0\r\n\r\n",
    INVITE.replace(b"Call-ID: 1234@host\r\n", b""),  # a required header missing
    INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: seven INVITE"), INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: 7 BYE"),
    INVITE.replace(b"l: 13", b"l: 9999"), INVITE.replace(b"Max-Forwards: 70", b"Max Forwards 70"),
    b"SIP/2.0 999 Odd\r\n\r\n", INVITE.replace(b"Ann", "\u00e9".encode("latin-1")),
    INVITE.replace(b"l: 13", "l: \u00b2".encode()), INVITE.replace(b"CSeq: 7 INVITE", "CSeq: \u00b2 INVITE".encode()),
    INVITE.replace(b"CSeq: 7 INVITE", "CSeq: \u0667 INVITE".encode()),  # an Arabic-Indic 7: int() reads it, SIP not
    pytest.param(INVITE.replace(b"l: 13", b"l: " + b"9" * 5000), id="5000-digit length"),  # int() raises on it
    INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: INVITE"), INVITE.replace(b"l: 13", b"l: -1"),
])
def test_what_is_not_sip_is_refused_with_a_reason(data):
    with pytest.raises(BadMessage):
        parse(data)


def test_a_request_whose_call_headers_are_sound_can_be_told_what_is_wrong():
    with pytest.raises(BadMessage) as bad_length:
        parse(INVITE.replace(b"l: 13", b"l: 9999"))
    assert bad_length.value.request.cseq == (7, "INVITE")  # enough to answer it 400
    with pytest.raises(BadMessage) as bad_cseq:
        parse(INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: seven INVITE"))
    assert bad_cseq.value.request is None  # a response could not say which request it answers


def test_sip_uris():
    assert parse_uri("sip:agent1@127.0.0.1:5070").address == ("127.0.0.1", 5070)
    assert parse_uri("sip:[::1]:5062;transport=udp").address == ("::1", 5062)
    assert parse_uri("sips:bob:secret@example.com").user == "bob"
    assert parse_uri("sip:example.com").address == ("example.com", 5060)
    for bad in ("tel:+15551234", "sip:", "sip:a@b:99999", "http://x"):
        with pytest.raises(BadMessage):
            parse_uri(bad)


# -- SDP -------------------------------------------------------------------------------------------------

BARESIP_OFFER = (b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                 b"m=audio 20000 RTP/AVP 0 8 101\r\nb=AS:64\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
                 b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n")


def test_an_offer_is_answered_with_its_first_g711_codec_and_its_telephone_event_type():
    origin = sdp.Origin(session=42)
    media, answer = sdp.answer(BARESIP_OFFER, "127.0.0.1", 30000, origin)
    assert (media.host, media.port, media.payload_type, media.codec, media.dtmf_payload_type) == (
        "127.0.0.1", 20000, 0, "PCMU", 101)
    assert sdp.parse(answer) == sdp.Media("127.0.0.1", 30000, 0, "PCMU", 101, "sendrecv")
    assert b"a=ptime:20" in answer and b"o=ivr 42 1 IN IP4 127.0.0.1" in answer
    assert b"o=ivr 42 2 " in sdp.answer(BARESIP_OFFER, "127.0.0.1", 30000, origin)[1]  # a re-INVITE's answer


def test_a_law_only_hold_and_video_first_offers():
    alaw = BARESIP_OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 8 96").replace(b"101 tele", b"96 tele")
    assert sdp.parse(alaw).codec == "PCMA" and sdp.parse(alaw).dtmf_payload_type == 96
    held = BARESIP_OFFER.replace(b"a=sendrecv", b"a=sendonly")
    media, answer = sdp.answer(held, "127.0.0.1", 30000, sdp.Origin())
    assert media.on_hold and b"a=recvonly" in answer
    video_first = BARESIP_OFFER.replace(b"m=audio", b"m=video 20002 RTP/AVP 96\r\nm=audio")
    assert sdp.parse(video_first).port == 20000


@pytest.mark.parametrize("body,error", [
    (b"", sdp.BadSdp), (b"\xff\xfe", sdp.BadSdp), (b"hello", sdp.BadSdp),
    (BARESIP_OFFER.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 not-an-address"), sdp.BadSdp),
    (BARESIP_OFFER.replace(b"m=audio 20000 RTP/AVP 0 8 101", b"m=audio x RTP/AVP"), sdp.BadSdp),
    (BARESIP_OFFER.replace(b"c=IN IP4 127.0.0.1\r\n", b""), sdp.BadSdp),
    (BARESIP_OFFER.replace(b"m=audio 20000", "m=audio \u00b2".encode()), sdp.BadSdp),  # a digit to Python, not to int()
    (BARESIP_OFFER.replace(b"RTP/AVP 0 8 101", "RTP/AVP 0 \u00b3".encode()), sdp.BadSdp),
    pytest.param(BARESIP_OFFER.replace(b"m=audio 20000", b"m=audio " + b"9" * 5000), sdp.BadSdp,
                 id="5000-digit port"),  # past int()'s digit limit: ValueError, a traceback per packet
    pytest.param(BARESIP_OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 0 " + b"1" * 5000), sdp.BadSdp,
                 id="5000-digit payload type"),
    (BARESIP_OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 9 101"), sdp.NoCommonCodec),  # G.722 only
    (BARESIP_OFFER.replace(b"RTP/AVP", b"RTP/SAVP"), sdp.NoCommonCodec),
    (BARESIP_OFFER.replace(b"m=audio", b"m=video"), sdp.NoCommonCodec),
])
def test_bad_or_unusable_offers(body, error):
    with pytest.raises(error):
        sdp.parse(body)


# -- RTP and keypad events ----------------------------------------------------------------------------------

def test_rtp_packets_round_trip_and_skip_csrcs_extensions_and_padding():
    packet = rtp.RtpPacket(0, 65535, 4294967295, 0xDEADBEEF, b"\x01" * 160, marker=True)
    assert rtp.parse(bytes(packet)) == packet
    raw = bytearray(bytes(packet))
    raw[0] |= 0x20 | 0x10 | 0x01  # padding, an extension, one CSRC
    with_all = bytes(raw[:12]) + b"CSRC" + b"\xbe\xde\x00\x01" + b"EXT!" + bytes(raw[12:]) + b"\x00\x00\x03"
    assert rtp.parse(with_all).payload == b"\x01" * 160


@pytest.mark.parametrize("data", [b"", b"\x80" * 11, b"\x40" + bytes(20), b"\x80\xc8" + bytes(30),
                                  b"\x91\x00" + bytes(10) + b"\x00\x00\xff\xff",
                                  b"\xa0\x00" + bytes(10) + b"\x40", b"\xa0\x00" + bytes(10) + b"ab\x00"])
def test_what_is_not_rtp_is_refused(data):
    with pytest.raises(rtp.BadPacket):
        rtp.parse(data)


def test_a_key_press_is_reported_once_however_often_its_end_packets_repeat():
    keys = KeypadEvents()
    press = [keys.key(1000, bytes([5, 0x0A, 0, d])) for d in (160, 240)]
    end = [keys.key(1000, bytes([5, 0x8A, 1, 64])) for _ in range(3)]
    again = keys.key(2000, bytes([5, 0x8A, 1, 64]))  # the same key pressed again
    assert press + end + [again] == ["5", None, None, None, None, "5"]
    assert keys.key(3000, bytes([11, 0, 0, 160])) == "#" and keys.key(4000, bytes([12, 0, 0, 1])) is None
    assert keys.key(5000, b"\x01") is None


@pytest.mark.parametrize("kind,body,key", [
    ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
    ("application/dtmf-relay", b"signal= #\r\n", "#"), ("application/dtmf-relay", b"Signal=10", "*"),
    ("application/dtmf", b"7", "7"), ("application/dtmf", b"77", None), ("text/plain", b"5", None),
    ("application/dtmf-relay", b"\xff\xfe", None),
])
def test_keys_from_sip_info(kind, body, key):
    assert info_key(kind, body) == key


# -- jitter buffer ------------------------------------------------------------------------------------------

def drain(buffer: JitterBuffer, ticks: int) -> list:
    return [buffer.get() for _ in range(ticks)]


def test_packets_out_of_order_come_out_in_order_late_and_duplicate_ones_dropped():
    buffer = JitterBuffer(depth=3)
    for sequence in (10, 12, 11, 13, 12):
        buffer.put(sequence, bytes([sequence]))
    out = drain(buffer, 4)
    buffer.put(11, b"late")
    assert out == [b"\x0a", b"\x0b", b"\x0c", b"\x0d"] and buffer.duplicates == 1
    assert buffer.get() is None and buffer.late == 1


def test_a_lost_packet_is_silence_once_later_ones_wait_and_sequence_numbers_wrap():
    buffer = JitterBuffer(depth=2)
    for sequence in (65534, 65535, 1, 2, 3):  # 0 is lost
        buffer.put(sequence, sequence.to_bytes(2, "big"))
    assert drain(buffer, 6) == [b"\xff\xfe", b"\xff\xff", None, b"\x00\x01", b"\x00\x02", b"\x00\x03"]
    assert buffer.lost == 1


def test_playout_waits_for_depth_packets_and_a_restarted_sender_is_followed():
    buffer = JitterBuffer(depth=2, capacity=50)
    buffer.put(5, b"a")
    assert buffer.get() is None  # not primed yet
    buffer.put(6, b"b")
    assert drain(buffer, 2) == [b"a", b"b"]
    for sequence in (30000, 30001):
        buffer.put(sequence, b"new")
    assert drain(buffer, 2) == [b"new", b"new"]

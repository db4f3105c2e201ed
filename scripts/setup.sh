#!/usr/bin/env bash
# One command from a fresh clone to a bot that is ready to run: system packages, .venv with the
# pinned Python packages, the English Vosk model if the network allows, and a trained dialog model.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

# Runtime: espeak-ng (pyttsx3's voice), PortAudio (sounddevice). Tests: PulseAudio and ALSA's
# plugin that routes to it (a virtual microphone sounddevice records from), the caller voices
# flite and festival, sox, PostgreSQL (the stores are tested on it as well as on SQLite), and
# chromium (the agents' console is tested in a real browser).
APT_PACKAGES="espeak-ng libportaudio2 pulseaudio libasound2-plugins flite festival festvox-us-slt-hts sox libsox-fmt-all postgresql chromium baresip kamailio sip-tester"

find_python() {
  for candidate in python3.10 "$HOME/.pyenv/versions/3.10.13/bin/python3.10"; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    local version
    version=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | tail -n 1 || true)
    if [ -n "$version" ]; then PYENV_VERSION="$version" pyenv which python3.10; return 0; fi
  fi
  return 1
}

install_system_packages() {
  local missing=""
  for package in $APT_PACKAGES; do
    dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
  done
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing system packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    say "missing system packages; run:  sudo apt-get install -y$missing"
    exit 1
  fi
}

install_system_packages

PYTHON=$(find_python) || {
  say "Python 3.10 is needed (Rasa 3.6 supports 3.8-3.10 only) and none was found."
  say "Install it, e.g.  pyenv install 3.10.13  (or your distribution's python3.10), then run this again."
  exit 1
}
say "using $PYTHON ($("$PYTHON" --version))"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade 'pip<24' 'wheel<0.46'
# constraints.txt pins every package: Rasa 3.6 breaks if packaging, numpy or protobuf move.
.venv/bin/python -m pip install -q -c constraints.txt -r requirements.txt
.venv/bin/python -m pip install -q -c constraints.txt --no-deps -e .
# WebRTC's echo canceller: its wheel declares numpy>=1.24, which Rasa's numpy pin forbids, yet it
# does not use numpy's C ABI (pybind11) and works with 1.23.5 (tests/test_echo.py). The one
# package installed outside the resolver, and the one complaint pip check may make.
.venv/bin/python -m pip install -q --no-deps pywebrtc-audio==0.2.0
ECHO_PIN="pywebrtc-audio 0.2.0 has requirement numpy>=1.24, but you have numpy 1.23.5."
if ! problems=$(.venv/bin/python -m pip check 2>&1); then
  problems=$(printf '%s\n' "$problems" | grep -vxF "$ECHO_PIN" || true)
  if [ -n "$problems" ]; then printf '%s\n' "$problems"; exit 1; fi
fi

.venv/bin/ivr db seed

# The English Vosk model lives outside the package registries: try briefly, go on without it.
if ! .venv/bin/ivr models pull --timeout 15 2>/tmp/ivr-pull.err; then
  say "no English Vosk model ($(tail -n 1 /tmp/ivr-pull.err)); the bundled Whisper tiny.en will be used"
fi

.venv/bin/ivr dialogs check
.venv/bin/ivr train
say "ready: run  .venv/bin/ivr call  to talk to the bot"

# Sourced by ./start and ./run-tests: make .venv (Python 3.11+) and install requirements.
# Re-installs only when a requirements file changed, so repeated runs start quickly.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQUIREMENTS="${1:-requirements.txt}"

# True when this shell may install Debian packages itself (root, with apt-get).
can_apt_install() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1
}

# Install Debian packages quietly, reading the package lists once per run.
apt_install() {
    if [ -z "${APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

find_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

if [ ! -x "$VENV/bin/python" ]; then
    PY="$(find_python)"
    echo "creating $VENV with $PY"
    if ! "$PY" -m venv "$VENV" 2>/dev/null; then
        # Debian and Ubuntu ship venv separately; install it when we may.
        if can_apt_install; then
            apt_install python3-venv
            rm -rf "$VENV"
            "$PY" -m venv "$VENV"
        else
            echo "error: '$PY -m venv' failed; install your distribution's python3-venv" >&2
            exit 1
        fi
    fi
fi

STAMP="$VENV/.installed-$(basename "$REQUIREMENTS")"
WANT="$(cat "$ROOT"/requirements*.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "installing $REQUIREMENTS into $VENV ..."
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/$REQUIREMENTS"
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"

CHROMIUM=/usr/bin/chromium

# Used by ./run-tests only: the browser tests drive Debian's Chromium through Playwright,
# because downloading Playwright's own browser build is not possible on CI. A CJK font
# comes with it so screenshots of the Chinese pages show text, not boxes. When Chromium
# cannot be installed here, the browser tests are skipped with the reason this prints.
ensure_chromium() {
    [ -x "$CHROMIUM" ] && return 0
    if ! can_apt_install; then
        echo "warning: $CHROMIUM is missing and cannot be installed here (needs root and" \
            "apt-get); the browser tests will be skipped. Install it: sudo apt-get install chromium" >&2
        return 0
    fi
    echo "installing Debian's chromium for the browser tests ..."
    local started=$SECONDS
    if ! apt_install chromium fonts-wqy-microhei || [ ! -x "$CHROMIUM" ]; then
        echo "error: 'apt-get install chromium' failed; the browser tests cannot run" >&2
        return 1
    fi
    echo "installed chromium in $((SECONDS - started)) s"
}

# Sourced by ./start and ./run-tests: make .venv (Python 3.11+) and install requirements.
# Re-installs only when a requirements file changed, so repeated runs start quickly.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQUIREMENTS="${1:-requirements.txt}"

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
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
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

"""The floor of ``bench.webhook_load``: a signed webhook answered with a constant SOS document.

    .venv/bin/gunicorn -w 2 --threads 4 -b 127.0.0.1:8001 'bench.floor_app:create_app()'

Settings come from the environment as the app's do. Every POST, whatever its path, passes the
app's own signature check (``ivr.signature.check_signature``: Twilio's ``RequestValidator``
over ``PUBLIC_BASE_URL`` + path) and gets the SOS line's ``<Say>`` + ``<Enqueue>`` document,
built once with the app's builders: no database, no Redis, no per-request TwiML.
"""

from __future__ import annotations

from flask import Flask, Response

from callflows import sos
from ivr import settings
from ivr.call import links_of, style_of
from ivr.signature import check_signature


def create_app(config: settings.Settings | None = None) -> Flask:
    """A Flask app answering every signed POST with one constant TwiML document."""
    app = Flask(__name__)
    app.config["SETTINGS"] = config = config or settings.load()
    document = str(sos.answer(style_of(config), links_of(config), since_ms=0)).encode()
    app.before_request(check_signature)

    @app.post("/<path:path>")
    def constant(path: str) -> Response:
        """The same SOS answer for every webhook."""
        return Response(document, mimetype="text/xml")

    return app

"""``flask simulate``: place one simulated call to the app from the terminal."""

from __future__ import annotations

from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import with_appcontext

from ivr import phones
from ivr.settings import Settings
from simulator.phone import Phone
from simulator.transport import FlaskTransport, HttpTransport, Transport
from simulator.users import InteractiveUser, LegKind, ScriptedUser, User

LINES = ("sos", "hotline", "shortcut", "helper")
LOOPBACK = ("127.0.0.1", "localhost")
# The calls of the app answered as calls of their own, as the summary counts them.
ANSWERED_CALLS = {
    LegKind.CALLBACK: "calls back",
    LegKind.HELPER: "helpers' calls",
    LegKind.FOLLOWUP: "follow-ups",
    LegKind.CARE: "care calls",
}


def local_standin(settings: Settings) -> str | None:
    """The REST stand-in's URL when the REST API is one on this machine (the demo setup)."""
    api = settings.twilio_api_base_url.rstrip("/")
    return api if urlsplit(api).hostname in LOOPBACK else None


def _number_option(value: str | None, what: str) -> str:
    if phones.is_withheld(value):
        return (value or "anonymous").strip().lower() or "anonymous"
    try:
        return phones.normalize(value)
    except phones.InvalidPhone as exc:
        raise click.BadParameter(str(exc), param_hint=what) from exc


@click.command("simulate")
@click.option(
    "--line",
    type=click.Choice(LINES),
    default="hotline",
    show_default=True,
    help="Which of the configured lines to call (first number of that list); "
    "helper: the helpers' line (HELPER_NUMBERS), called from a helper's phone.",
)
@click.option("--to", "to_number", help="Number to call; overrides --line.")
@click.option(
    "--from",
    "from_number",
    prompt="来电号码 Caller number ('anonymous' = withheld)",
    help="Caller's number; 'anonymous' for a withheld number.",
)
@click.option(
    "--script",
    help="Comma-separated answers, in the order the call asks, e.g. "
    "'1,,speech:摔倒了,dial:completed:75' (empty = no input, 'hangup' = the caller hangs up). "
    "A phone the app rings (a <Dial> whisper or a leg it places through the REST API): "
    "'op:answer:1:60' (answers, presses 1, talks 60 s), 'op:answer:2', 'op:answer:' (presses "
    "nothing), 'op:voicemail', 'op:noanswer', 'op:busy'; 'duty:…' the same for a DUTY_NUMBERS "
    "phone. A call back to the caller after the call: 'callback:answer' (then the call back's "
    "own answers), 'callback:noanswer', 'callback:busy'. A helper's phone called with a task "
    "or an arrival check: 'helper:answer' (then that call's own answers: '1' accepts, '2' "
    "declines; '1' arrived), 'helper:voicemail', 'helper:noanswer', 'helper:busy'; "
    "'followup:…' the same for a resident called after a visit ('1' satisfied, '2' not, '0' "
    "a person); 'care:…' the same for the daily care call ('1' fine, '2' needs help, '3' a "
    "chat). Waiting in a conference: empty = wait.",
)
@click.option("--base-url", help="Public base URL of the app (default PUBLIC_BASE_URL).")
@click.option("--in-process", is_flag=True, help="Call this app in-process, no server needed.")
@click.option("--real-time", is_flag=True, help="Really wait through pauses and speech.")
@click.option(
    "--no-standin",
    is_flag=True,
    help="Do not follow REST redirects from a local REST stand-in (TWILIO_API_BASE_URL).",
)
@click.option(
    "--redirect-wait",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Real seconds each turn in a queue lasts at least, so workers can redirect the call.",
)
@click.option(
    "--await-calls",
    type=click.FloatRange(min=0),
    help="After the call, keep answering the calls the app places (calls back, helpers' "
    "calls, follow-ups) until this many real seconds pass without one "
    "[default: 5 with --script while it lasts, 0 at the keyboard].",
)
@with_appcontext
def simulate_command(
    line: str,
    to_number: str | None,
    from_number: str,
    script: str | None,
    base_url: str | None,
    in_process: bool,
    real_time: bool,
    no_standin: bool,
    redirect_wait: float,
    await_calls: float | None,
) -> None:
    """Place one simulated phone call to the app, the way Twilio would."""
    settings: Settings = current_app.config["SETTINGS"]
    if not to_number:
        numbers = getattr(settings, f"{line}_numbers")
        if not numbers:
            raise click.UsageError(f"no {line.upper()}_NUMBERS configured; pass --to")
        to_number = numbers[0]
    base_url = (base_url or settings.public_base_url).rstrip("/")
    user: User = ScriptedUser(script.split(",")) if script is not None else InteractiveUser()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    http = None if in_process else HttpTransport(settings.twilio_auth_token)
    transport: Transport = http or FlaskTransport(app, settings.twilio_auth_token, base_url)
    if not settings.twilio_auth_token:
        click.echo("⚠️  TWILIO_AUTH_TOKEN is empty: webhooks are signed with an empty key", err=True)
    standin_url = None if no_standin else local_standin(settings)
    # A scripted caller who hangs up may be called back: give the workers time to do it.
    # (Phone.for_settings passes DUTY_NUMBERS, so a duty phone's leg is told apart.)
    linked_script = standin_url is not None and script is not None
    if await_calls is None:
        await_calls = max(redirect_wait * 5, 5) if linked_script else 0.0
    phone = Phone.for_settings(
        settings,
        transport,
        user,
        from_number=_number_option(from_number, "--from"),
        to_number=_number_option(to_number, "--to"),
        base_url=base_url,
        output=click.echo,
        real_time=real_time,
        standin_url=standin_url,
        redirect_wait=redirect_wait,
        callback_wait=await_calls,
    )
    try:
        record = phone.call()
    except ValueError as exc:  # a scripted answer that does not fit the question
        raise click.ClickException(str(exc)) from exc
    finally:
        if http is not None:
            http.close()
    legs = f", {len(record.legs)} legs placed by the app" if record.legs else ""
    answered = "".join(
        f", {count} {label} answered"
        for kind, label in ANSWERED_CALLS.items()
        if (count := sum(1 for c in record.calls if c.kind is kind))
    )
    click.echo(
        f"📋 {len(record.requests)} webhooks, {record.duration} s, {record.status}{legs}{answered}"
    )

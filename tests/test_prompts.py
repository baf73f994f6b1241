"""What callers hear: short menus and sentences as spoken, and recorded prompts in dialect.

The budget is measured on the documents the real builders emit with the real settings, at the
rate in their SSML (about 4 Mandarin characters a second at 100 %: 3.4 at 85 %, 2.8 when a
menu is repeated at 70 %): a menu (what one ``<Gather>`` says) under 15 s, a sentence under
5 s, at most four choices a menu, the label before the key. The whisper the people answering
hear is for staff and is left out (it reads a whole address; its length sets the offer's
deadline instead, see ``operator.whisper_seconds``).
"""

from __future__ import annotations

import ast
import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest
from twilio.twiml.voice_response import VoiceResponse

from callflows import care, helpers, hotline, operator, prompts, shortcut, sos, waiting
from callflows.operator import Reason
from callflows.voice import absolute_links, say, say_rate, say_seconds, speak, speech_seconds
from callflows.waiting import Queue
from data import residents
from ivr import recordings
from ivr.call import style_of
from ivr.settings import PROJECT_ROOT, Settings
from tests import twiml_check
from tests.conftest import BASE_URL, CHEN, DUTY, HOTLINE, SHORTCUT, SOS

MENU_SECONDS = 15
SENTENCE_SECONDS = 5
MAX_CHOICES = 4
# Mandarin only, by design: a number sits inside the sentence.
MANDARIN_ONLY = {"queue_position"}
RELATIVES = [
    shortcut.Contact(1, "儿子"),
    shortcut.Contact(2, "女儿"),
    shortcut.Contact(5, "外甥女"),
]
# A full speed-dial: nine relatives, some known by a four-character name.
NINE_RELATIVES = [
    shortcut.Contact(slot, "欧阳明月" if slot % 2 else "外孙女") for slot in range(1, 10)
]


def documents(settings: Settings) -> Iterator[tuple[str, VoiceResponse]]:
    """Every document a caller can hear, built by the real builders with these settings."""
    style, links = style_of(settings), absolute_links(settings.public_base_url)
    yield "sos", sos.answer(style, links, 0)
    yield "sos callback", sos.callback_answer(style, links, 0)
    yield "sos without queue", sos.straight_to_duty(DUTY, style, links)
    for queue in Queue:
        for position in (None, 1, 2, 12):
            yield f"wait {queue} {position}", waiting.wait_music(queue, position, 0, 30, style)
        yield f"back in line {queue}", waiting.back_in_line(queue, style, links, 0)
    yield "queue exit", waiting.queue_exit("leave", DUTY, style, links)
    yield "duty again", waiting.duty_result(False, DUTY, 1, style, links)
    yield "no duty phones", waiting.duty_dial((), 1, style, links)
    yield "system trouble", waiting.system_trouble(DUTY, style, links)
    yield "unknown line", speak([prompts.UNKNOWN_LINE], style)
    for title in (None, "陈依伯", "欧阳老人家"):
        menu = hotline.menu(style, links, intro=[hotline.greeting(title)])
        yield f"hotline menu {title}", menu
    yield "hotline again", hotline.menu(style, links, attempt=2, intro=[prompts.MENU_AGAIN])
    for digits in ("7", "#", "é", None):
        for invalid in (1, hotline.MAX_INVALID):
            yield (
                f"hotline invalid {digits} {invalid}",
                hotline.not_understood(style, links, digits=digits, invalid=invalid),
            )
    yield "hotline to a person", hotline.to_operator(style, links, 0)
    for choice in hotline.SERVICES:
        for can_call_back in (True, False):
            yield (
                f"registered {choice} {can_call_back}",
                hotline.service_registered(
                    choice, 7, can_call_back=can_call_back, style=style, links=links
                ),
            )
    yield "callback promised", hotline.callback_promised(style)
    yield "shortcut answer", shortcut.answer(style, links)
    for attempt in (1, 2):
        for contacts in (RELATIVES, NINE_RELATIVES, []):
            menu = shortcut.menu(contacts, style, links, attempt=attempt)
            yield f"relatives {len(contacts)} {attempt}", menu
    niece = shortcut.Contact(5, "外甥女")
    refusals = [
        ([prompts.SHORTCUT_NOT_REGISTERED], Reason.NOT_REGISTERED, False),
        ([prompts.CALLER_NUMBER_HIDDEN], Reason.NOT_REGISTERED, False),
        ([prompts.SHORTCUT_NO_CONTACTS], Reason.NO_CONTACTS, False),
        ([prompts.SHORTCUT_EMPTY_SLOT.format(slot=9)], Reason.EMPTY_SLOT, True),
        ([prompts.SHORTCUT_QUOTA_USED_UP], Reason.QUOTA_USED_UP, False),
    ] + [
        (shortcut.not_mainland(niece, region), Reason.FOREIGN_NUMBER, True)
        for region in ("HK", "MO", "TW", "SG")
    ]
    for messages, reason, offer_menu in refusals:
        explained = shortcut.explain(messages, reason, style, links, offer_menu=offer_menu)
        yield f"refused {reason} {messages[0]}", explained
    for seconds in (29 * 60, 30):
        yield (
            f"connect {seconds}",
            shortcut.connect(
                niece,
                "+8613900139001",
                caller_id=SHORTCUT,
                time_limit=seconds,
                reservation_id=1,
                low_balance_seconds=settings.low_balance_minutes * 60,
                style=style,
                links=links,
            ),
        )
    for status in ("busy", "no-answer", "failed", "completed"):
        yield f"dialled {status}", shortcut.dial_outcome(status, niece, style, links)
    yield "bridged", operator.bridge("CA1", links("/ivr/bridge/result"), style)
    yield "helpers' line, unknown number", speak([prompts.HELPER_LINE_UNKNOWN], style)
    for need in prompts.NEED_WORDS:
        for title in ("陈依伯", "欧阳老人家"):
            action = links("/ivr/followup/key", task=1, attempt=1)
            yield f"follow-up {need} {title}", helpers.followup(title, need, action, style)
    for text in (prompts.FOLLOWUP_THANKS, prompts.FOLLOWUP_SORRY):
        yield f"follow-up {text.key}", helpers.said_and_done(text, style)
    for title in ("陈依伯", "欧阳老人家"):
        for morning in (True, False):
            action = links("/ivr/care/key", care=1, attempt=1)
            yield f"care call {title} {morning}", care.question(title, morning, action, style)
    yield "care fine", care.fine(style)
    yield "care chat task", care.chat_task(style)
    for text in (prompts.CARE_TO_PERSON, prompts.CARE_SILENT, prompts.HOTLINE_CALLBACK_GREETING):
        yield f"care {text.key}", speak([text], style)


def sentences(text: str) -> list[str]:
    """A text cut into sentences at 。！？ (each keeps its closing mark)."""
    return [s for s in re.findall(r"[^。！？]+[。！？]?", text) if s.strip()]


@pytest.fixture(scope="module")
def spoken() -> list[tuple[str, ElementTree.Element]]:
    """Every caller's document, parsed, with the project's default settings."""
    settings = Settings(public_base_url=BASE_URL)
    return [(name, ElementTree.fromstring(str(doc))) for name, doc in documents(settings)]


def test_every_menu_is_short(spoken):
    for name, root in spoken:
        for gather in root.iter("Gather"):
            seconds = sum(say_seconds(node) for node in gather.iter("Say"))
            text = " ".join(gather.itertext())
            assert seconds < MENU_SECONDS, f"{name}: {seconds:.1f} s: {text}"


def test_every_sentence_is_short(spoken):
    for name, root in spoken:
        for node in root.iter("Say"):
            rate = say_rate(node)
            for sentence in sentences("".join(node.itertext())):
                seconds = speech_seconds(sentence, rate)
                assert seconds < SENTENCE_SECONDS, f"{name}: {sentence} {seconds:.1f} s at {rate}"


def test_menus_offer_four_choices_at_most_label_first(spoken):
    for name, root in spoken:
        for gather in root.iter("Gather"):
            text = "".join(gather.itertext())
            assert text.count("请按") <= MAX_CHOICES, f"{name}: {text}"
            for sentence in sentences(text):
                if "请按" in sentence:
                    assert sentence.index("请按") > 1, f"{name}: the label before the key"


def test_callers_hear_everyday_words(spoken):
    for name, root in spoken:
        said = twiml_check.said(root)
        for word in ("星号", "人工", "精神关怀", "国内", "请稍候"):
            assert word not in said, f"{name}: {word} in {said}"


def test_every_prompt_a_caller_hears_is_measured(spoken):
    said = " ".join(twiml_check.said(root) for _, root in spoken)
    for prompt in prompts.catalogue():
        fixed = prompt.recorded_text if prompt.recordable else prompt.parts[0][0]
        assert fixed in said, f"{prompt.key} is in no document the budget measures"


def test_budget_holds_at_the_rate_the_settings_configure():
    slower = Settings(public_base_url=BASE_URL, tts_rate="80%", tts_slow_rate="70%")
    menu = hotline.menu(style_of(slower), absolute_links(BASE_URL))
    gather = ElementTree.fromstring(str(menu)).find("Gather")
    seconds = sum(say_seconds(node) for node in gather.iter("Say"))
    assert {say_rate(node) for node in gather.iter("Say")} == {"80%"}
    assert seconds == pytest.approx(len("".join(gather.itertext())) / (4 * 0.8))


# -- the catalogue -----------------------------------------------------------------------


def test_every_prompt_has_a_stable_key():
    every = prompts.catalogue(staff=True)
    keys = [p.key for p in every]
    assert len(keys) == len(set(keys)) and all(keys)
    assert prompts.SOS_CONNECTING.key == "sos_connecting"
    assert prompts.by_key("hotline_menu") is prompts.HOTLINE_MENU
    assert all(p.key == name.lower() for name, p in vars(prompts).items() if p in every)


def test_callers_prompts_can_be_recorded():
    unrecordable = {p.key for p in prompts.catalogue() if not p.recordable}
    assert unrecordable == MANDARIN_ONLY
    assert prompts.HOTLINE_GREETING_KNOWN.recorded_text == "您好！这里是智慧养老服务热线。"
    assert prompts.SHORTCUT_MENU_ITEM.recorded_text == "请按"


# -- recorded prompts in dialect ----------------------------------------------------------


def fuzhou_caller(db, **changes) -> dict:
    rid = residents.upsert(db, {**CHEN, **changes})
    return residents.get(db, rid)


def plays(reply) -> list[str]:
    return [node.text or "" for node in reply.root.iter("Play")]


def test_a_recording_is_played_to_a_caller_of_its_dialect(phone, db, recorded, client):
    fuzhou_caller(db)
    folder = recorded("fuzhou", "sos_connecting")
    reply = phone(CHEN["phone"], SOS).start()
    url = f"{BASE_URL}/prompts/fuzhou/sos_connecting.wav"
    assert plays(reply) == [url]
    assert reply.root[0].tag == "Play", "played where the sentence was said"
    assert prompts.SOS_CONNECTING not in reply.said
    with client.get(url.removeprefix(BASE_URL)) as audio:
        assert audio.status_code == 200 and audio.mimetype == "audio/wav"
        assert audio.data == (folder / "sos_connecting.wav").read_bytes()


def test_a_missing_recording_is_said_in_mandarin(phone, db, recorded):
    fuzhou_caller(db)
    recorded("fuzhou", "hotline_menu")
    reply = phone(CHEN["phone"], SOS).start()
    assert plays(reply) == []
    assert prompts.SOS_CONNECTING in reply.said


def test_a_resident_without_a_dialect_hears_mandarin(phone, db, recorded):
    fuzhou_caller(db, dialect=None)
    recorded("fuzhou", "sos_connecting")
    reply = phone(CHEN["phone"], SOS).start()
    assert plays(reply) == [] and prompts.SOS_CONNECTING in reply.said


def test_an_unknown_caller_hears_mandarin(phone, recorded):
    recorded("fuzhou", "sos_connecting")
    assert plays(phone("+8618612345678", SOS).start()) == []


def test_a_name_is_said_around_the_recording(phone, db, recorded):
    fuzhou_caller(db)
    recorded("fuzhou", "hotline_greeting_known", "hotline_menu")
    reply = phone(CHEN["phone"], HOTLINE).start()
    first, second = reply.root[0], reply.root[1]
    assert first.tag == "Say" and "".join(first.itertext()) == "陈依伯"
    assert second.tag == "Play" and second.text.endswith("/fuzhou/hotline_greeting_known.wav")
    gather = reply.find("Gather")
    assert [child.tag for child in gather] == ["Play", "Say"], "the hint is not recorded yet"
    assert gather.find("Play").text.endswith("/fuzhou/hotline_menu.wav")


def test_relatives_names_and_keys_are_said_around_the_recording(phone, chen, recorded):
    recorded("fuzhou", "shortcut_menu_item")
    call = phone(CHEN["phone"], SHORTCUT)
    menu = call.post(call.start().url("Redirect"))
    gather = menu.find("Gather")
    heard = [
        node.text.rsplit("/", 1)[1] if node.tag == "Play" else "".join(node.itertext())
        for node in gather
    ]
    assert heard[:3] == ["儿子", "shortcut_menu_item.wav", "1。"]
    assert heard[-1] == prompts.OFFER_OPERATOR


def test_a_new_recording_is_used_without_a_restart(phone, db, recorded):
    fuzhou_caller(db)
    folder = recorded("fuzhou", "hotline_menu")
    past = folder.stat().st_mtime_ns - 60 * 1_000_000_000
    os.utime(folder, ns=(past, past))
    assert plays(phone(CHEN["phone"], SOS).start()) == []  # listed and kept (folder unchanged)
    recorded("fuzhou", "sos_connecting")
    assert plays(phone(CHEN["phone"], SOS).start())[0].endswith("/sos_connecting.wav")


def test_the_builders_choose_from_plain_data_never_the_disk():
    for path in sorted((PROJECT_ROOT / "callflows").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        assert not modules & {"os", "pathlib", "io", "shutil", "glob", "wave"}, path.name
        calls = {
            node.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        assert "open" not in calls, path.name


def test_only_listed_recordings_are_served(client, recorded, settings):
    folder = recorded("fuzhou", "sos_connecting")
    (folder / "notes.txt").write_text("not audio")
    with client.get("/prompts/fuzhou/sos_connecting.wav") as audio:
        assert audio.status_code == 200
    for path in (
        "/prompts/fuzhou/notes.txt",
        "/prompts/fuzhou/missing.wav",
        "/prompts/Fuzhou/sos_connecting.wav",
        "/prompts/fuzhou/..%2Fsecret.wav",
        "/prompts/..%2Frun/sos_connecting.wav",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post("/prompts/fuzhou/sos_connecting.wav").status_code == 405


def test_mp3_is_preferred_to_wav(recorded, settings):
    folder = recorded("fuzhou", "sos_connecting")
    (folder / "sos_connecting.mp3").write_bytes(b"ID3")
    found = recordings.recorded(settings.prompts_dir, "fuzhou")
    assert found == {"sos_connecting": "sos_connecting.mp3"}


def test_the_checker_wants_a_get_route_for_play(app):
    good = f"<Response><Play>{BASE_URL}/prompts/fuzhou/sos_connecting.wav</Play></Response>"
    twiml_check.check(good, app)
    for url in (f"{BASE_URL}/ivr/sos", "https://elsewhere.example/a.wav"):
        with pytest.raises(twiml_check.TwimlError):
            twiml_check.check(f"<Response><Play>{url}</Play></Response>", app)


def test_a_recording_is_never_played_to_staff(recorded, settings):
    recorded("fuzhou", "whisper_accept", "sos_connecting")
    style = style_of(settings, "fuzhou")
    response = VoiceResponse()
    say(response, prompts.WHISPER_ACCEPT, style)
    say(response, prompts.SOS_CONNECTING, style)
    assert [child.tag for child in ElementTree.fromstring(str(response))] == ["Say", "Play"]


# -- the commands -------------------------------------------------------------------------


def test_prompts_list_shows_what_is_recorded(app, recorded):
    recorded("fuzhou", "sos_connecting", "hotline_greeting_known")
    result = app.test_cli_runner().invoke(args=["prompts", "list", "--dialect", "fuzhou"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split("\t", 1) for line in result.output.splitlines() if "\t" in line)
    recorded_line = f"recorded fuzhou/sos_connecting.wav\t{prompts.SOS_CONNECTING}"
    assert lines["sos_connecting"] == recorded_line
    assert lines["hotline_menu"] == f"missing\t{prompts.HOTLINE_MENU}"
    assert lines["queue_position"].startswith("Mandarin only")
    assert lines["whisper_accept"].startswith("staff")
    assert set(lines) == {p.key for p in prompts.catalogue(staff=True)}
    assert f"2 of {len(prompts.catalogue()) - len(MANDARIN_ONLY)} recordable" in result.output


def test_prompts_export_writes_the_studios_script(app, tmp_path):
    out = tmp_path / "script.csv"
    result = app.test_cli_runner().invoke(args=["prompts", "export", str(out)])
    assert result.exit_code == 0, result.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM, for Excel"
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert list(rows[0]) == ["key", "text", "dialect", "note"]
    by_key = {row["key"]: row for row in rows}
    assert by_key["sos_connecting"] == {
        "key": "sos_connecting",
        "text": prompts.SOS_CONNECTING,
        "dialect": "fuzhou",
        "note": "",
    }
    greeting = by_key["hotline_greeting_known"]
    assert greeting["text"] == "您好！这里是智慧养老服务热线。"
    assert greeting["note"] == prompts.HOTLINE_GREETING_KNOWN
    assert set(by_key) == {p.key for p in prompts.catalogue()} - MANDARIN_ONLY
    assert Path(out).stat().st_size > 0


def test_prompts_list_refuses_a_folder_that_is_no_dialect(app):
    result = app.test_cli_runner().invoke(args=["prompts", "list", "--dialect", "../run"])
    assert result.exit_code != 0

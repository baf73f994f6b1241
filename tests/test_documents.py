"""First answers rendered once (``ivr.documents``): the same bytes the builders make, per caller."""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from callflows import prompts, shortcut, sos
from data import residents
from ivr.call import links_of, style_of
from ivr.documents import MARK, Documents, style_key
from ivr.queueing import millis
from tests.conftest import CHEN, HOTLINE, SHORTCUT, SOS


def _counting(build):
    built = []

    def counted(*args):
        built.append(args)
        return build(*args)

    return counted, built


def test_a_template_gives_what_the_builder_gives_for_every_value(app):
    settings = app.config["SETTINGS"]
    style, links = style_of(settings), links_of(settings)
    documents = Documents()
    build, built = _counting(lambda since: sos.answer(style, links, since))
    for since in (0, 7, 1_764_547_200_000, 9_999_999_999_999, MARK - 1):
        assert documents.template("sos", build, since) == str(sos.answer(style, links, since))
    assert built == [(MARK,)], "built once, with the mark"


def test_a_document_is_built_once_per_key():
    documents = Documents()
    build, built = _counting(lambda: VoiceResponse().hangup())
    assert documents.document("a", build) == documents.document("a", build)
    documents.document("b", build)
    assert len(built) == 2


def test_a_full_cache_starts_again():
    documents = Documents(limit=2)
    build, built = _counting(lambda: VoiceResponse())
    for key in ("a", "b", "c", "a"):
        documents.document(key, build)
    assert len(built) == 4, "'a' was dropped when the cache filled up"


def test_recordings_are_part_of_the_key(app):
    plain = style_of(app.config["SETTINGS"])
    recorded = style_of(app.config["SETTINGS"])
    object.__setattr__(recorded, "recordings", {"sos_connecting": "https://x/a.wav"})
    assert plain == recorded, "Style's own equality ignores recordings"
    assert style_key(plain) != style_key(recorded)


def test_each_sos_call_gets_its_own_arrival_time(phone, clock, app):
    settings = app.config["SETTINGS"]
    first = phone("+8618612345678", SOS).start()
    first_since = millis(clock.now)
    clock.advance(seconds=3)
    second = phone("+8618612345679", SOS).start()
    style, links = style_of(settings), links_of(settings)
    assert first.body == str(sos.answer(style, links, first_since))
    assert second.body == str(sos.answer(style, links, first_since + 3000))


def test_the_hotline_greets_each_resident_by_their_own_title(phone, db, app):
    residents.upsert(db, CHEN)
    residents.upsert(db, {**CHEN, "phone": "+8613800138111", "name": "林秀英", "gender": "F"})
    chen = phone(CHEN["phone"], HOTLINE).start()
    lin = phone("+8613800138111", HOTLINE).start()
    stranger = phone("+8618612345678", HOTLINE).start()
    again = phone(CHEN["phone"], HOTLINE).start()
    assert "陈依伯" in chen.said and "林依姆" in lin.said
    assert prompts.HOTLINE_GREETING_UNKNOWN in stranger.said
    assert "依伯" not in stranger.said and "依姆" not in stranger.said
    assert again.body == chen.body


def test_the_family_line_answer_is_the_builders(phone, chen, app):
    settings = app.config["SETTINGS"]
    reply = phone(CHEN["phone"], SHORTCUT).start()
    phone(CHEN["phone"], SHORTCUT).start()
    style = style_of(settings, chen["dialect"])
    assert reply.body == str(shortcut.answer(style, links_of(settings)))

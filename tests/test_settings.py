"""Settings come from the environment over a .env file; numbers are normalised."""

from __future__ import annotations

import pytest

from ivr import phones, settings


def test_defaults_without_environment(tmp_path):
    loaded = settings.load({}, env_file=tmp_path / "missing.env")
    assert loaded == settings.Settings()
    assert loaded.twilio_api_base_url == "https://api.twilio.com"
    assert loaded.database_path.endswith("data/eldercare.db")
    assert loaded.free_minutes_per_month == 330
    assert loaded.twilio_skip_signature_check is False


def test_environment_wins_over_dotenv(tmp_path):
    env = tmp_path / ".env"
    env.write_text("PUBLIC_BASE_URL=https://from-file\nGATHER_TIMEOUT=9\n", encoding="utf-8")
    loaded = settings.load({"PUBLIC_BASE_URL": "https://from-env"}, env_file=env)
    assert loaded.public_base_url == "https://from-env"
    assert loaded.gather_timeout == 9


def test_number_lists_are_normalised(tmp_path):
    loaded = settings.load(
        {"SOS_NUMBERS": "059187110000, +8659187110001", "DUTY_NUMBERS": "13900000001"},
        env_file=tmp_path / "none",
    )
    assert loaded.sos_numbers == ("+8659187110000", "+8659187110001")
    assert loaded.duty_numbers == ("+8613900000001",)


def test_a_bad_number_in_settings_fails_at_start(tmp_path):
    with pytest.raises(phones.InvalidPhone):
        settings.load({"SOS_NUMBERS": "12345"}, env_file=tmp_path / "none")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("0591-87110000", "+8659187110000"),
    ],
)
def test_phone_normalisation(raw, expected):
    assert phones.normalize(raw) == expected


@pytest.mark.parametrize("raw", ["", "anonymous", "Restricted", "+266696687", None])
def test_withheld(raw):
    assert phones.is_withheld(raw)
    assert phones.try_normalize(raw) is None


@pytest.mark.parametrize(
    ("number", "mainland"),
    [
        ("+8613800138000", True),
        ("+85291234567", False),
        ("+85366123456", False),
        ("+886912345678", False),
        ("+14155550100", False),
    ],
)
def test_mainland(number, mainland):
    assert phones.is_mainland(number) is mainland

"""Escalation policy of every level, helpline table, locales and safe-messaging wording."""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest

from mentalens.safety import (
    AI_DISCLOSURE,
    NOT_A_DIAGNOSIS,
    RiskLevel,
    assess,
    countries,
    escalation_text,
    notices,
    parse_locale,
    resources_for,
)
from mentalens.safety.helplines import load_helplines

EXAMPLES = {
    "none": "I had a nice walk today",
    "low": "I wish I was dead",
    "moderate": "I keep thinking about suicide",
    "high": "I'm going to kill myself this weekend",
    "imminent": "I just took all my pills",
}


def _a(level: str, locale: str = "US"):
    a = assess(EXAMPLES[level], locale=locale, use_classifier=False)
    assert a.level.value == level
    return a


def test_none_has_nothing_to_escalate() -> None:
    a = _a("none")
    assert not a.requires_escalation and a.resources == [] and escalation_text(a) is None


def test_low_gives_gentle_support_and_where_to_find_help() -> None:
    a = _a("low")
    text = escalation_text(a)
    assert "988" in text and "911" not in text
    assert [r.kind for r in a.resources if r.kind == "emergency"] == []  # no emergency number at low


def test_moderate_puts_resources_first_and_asks_about_safety() -> None:
    text = escalation_text(_a("moderate"))
    assert text.index("988") < text.index("911") < text.index("are you safe right now?")


def test_high_urges_a_crisis_line_or_emergency_services_now() -> None:
    a = _a("high")
    text = escalation_text(a)
    assert text.startswith("I'm really concerned about your safety. Please contact a crisis line now.")
    assert "988" in text and "call 911" in text
    assert a.resources[0].kind == "crisis_line" and any(r.kind == "emergency" for r in a.resources)


def test_imminent_gives_the_emergency_number_first() -> None:
    a = _a("imminent", "GB")
    text = escalation_text(a)
    assert text.startswith("Please call 999 now.")
    assert a.resources[0].kind == "emergency" and a.resources[0].phone == "999"
    assert "116 123" in text  # the crisis line follows


def test_each_level_escalates_more_than_the_one_below() -> None:
    shows_emergency = {lvl: any(r.kind == "emergency" for r in _a(lvl).resources) for lvl in EXAMPLES}
    assert shows_emergency == {"none": False, "low": False, "moderate": True, "high": True, "imminent": True}


def test_medical_emergency_leads_with_the_emergency_number_whatever_the_level() -> None:
    a = assess("my flatmate swallowed bleach and is not breathing", locale="AU", use_classifier=False)
    assert a.level == RiskLevel.NONE and a.flags["medical_emergency"]
    assert escalation_text(a).startswith("If someone has taken too much")
    assert "call 000" in escalation_text(a) and a.resources[0].phone == "000"


def test_abuse_flag_adds_an_abuse_line() -> None:
    a = assess("my boyfriend hits me", locale="en-GB", use_classifier=False)
    text = escalation_text(a)
    assert "not your fault" in text and "0808 2000 247" in text and "999" in text


def test_spanish_message_and_spanish_locale_get_spanish_text() -> None:
    a = assess("Me quiero suicidar", locale="es_MX", use_classifier=False)
    text = escalation_text(a)
    assert "800 911 2000" in text and "¿Puedo preguntarte si estás a salvo" in text
    b = assess("Me tomé todas las pastillas", locale="ES", use_classifier=False)
    assert escalation_text(b).startswith("Por favor, llama al 112 ahora.")
    # Spanish with an unknown country: the global directory, in Spanish
    c = assess("ya no quiero vivir", locale="es", use_classifier=False)
    assert "findahelpline.com" in escalation_text(c) and escalation_text(c).startswith("Parece que")


@pytest.mark.parametrize(
    ("locale", "country", "number"),
    [("US", "US", "988"), ("en-US", "US", "988"), ("es_MX", "MX", "800 911 2000"), ("GB", "GB", "116 123"),
     ("uk", "GB", "116 123"), ("en-CA", "CA", "988"), ("AU", "AU", "13 11 14"), ("ES", "ES", "024"),
     ("hi_IN", "IN", "14416"), ("fr-FR", "FR", "3114"), ("de_DE.UTF-8", "DE", "0800 111 0 111"),
     ("Spain", "ES", "024")],
)
def test_locales(locale: str, country: str, number: str) -> None:
    assert parse_locale(locale).country == country
    assert number in [r.phone for r in resources_for(locale)]


@pytest.mark.parametrize("locale", [None, "xx", "zz-ZZ", "Atlantis", "es"])
def test_unknown_locale_gets_the_global_fallback(locale, monkeypatch) -> None:
    monkeypatch.delenv("MENTALENS_LOCALE", raising=False)
    res = resources_for(locale)
    assert {r.kind for r in res} == {"directory", "emergency"}
    assert any("findahelpline.com" in (r.url or "") for r in res)
    assert any(r.name.lower() == "your local emergency number" for r in res)


def test_locale_from_config_environment(monkeypatch) -> None:
    monkeypatch.setenv("MENTALENS_LOCALE", "en-NZ")
    assert "1737" in [r.phone for r in resources_for(None)]


def test_helpline_table_is_curated_and_current() -> None:
    table = load_helplines()
    assert len(countries()) >= 25
    assert "re-check" in table.notice
    for code, entry in table.countries.items():
        kinds = [r.kind for r in entry["resources"]]
        assert "crisis_line" in kinds and "emergency" in kinds, code
        for r in entry["resources"]:
            assert r.source and r.source.startswith("http"), (code, r.name)
            assert isinstance(r.checked, dt.date) and r.checked <= dt.date.today(), (code, r.name)
            assert r.phone or r.sms or r.url
    us = [r.phone for r in table.countries["US"]["resources"]]
    assert "988" in us and not any("273" in (p or "") for p in us)  # the pre-2022 US number is gone
    assert "988" in [r.phone for r in table.countries["CA"]["resources"]]


def test_escalation_text_follows_safe_messaging() -> None:
    probes = ["I wish I was dead", "I keep thinking about suicide", "I'm going to kill myself this weekend",
              "I just took all my pills", "my dad hits me", "I want to shoot up my school",
              "my friend wants to kill herself", "Quiero morirme", "Me quiero suicidar", "Voy a matarme esta noche"]
    for text, locale in itertools.product(probes, ["US", "ES", "xx", "JP"]):
        esc = escalation_text(assess(text, locale=locale, use_classifier=False))
        assert esc, (text, locale)
        low = esc.lower()
        assert "committed suicide" not in low and "commit suicide" not in low and "cometió suicidio" not in low
        for method in ("pills", "rope", "hang", "overdose", "bridge", "jump", "pastillas"):
            assert not re.search(rf"\b{method}", low), (method, text)


def test_notices() -> None:
    assert "AI" in AI_DISCLOSURE and "not a human" in AI_DISCLOSURE
    assert "does not diagnose" in NOT_A_DIAGNOSIS
    assert "IA" in notices("es")[0] and notices("fr") == (AI_DISCLOSURE, NOT_A_DIAGNOSIS)

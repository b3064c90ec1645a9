"""Crisis lines and emergency numbers by country, with a global fallback for any other locale.

The table (resources/safety/helplines.json) is curated by hand: every entry names its source and the date
it was checked, and must be re-checked periodically (numbers change: the US moved to 988 in 2022).
The locale comes from the request, else $MENTALENS_LOCALE, else none (global fallback).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
import re
from typing import Any

from mentalens.errors import ConfigError
from mentalens.safety.types import Resource

LOCALE_ENV = "MENTALENS_LOCALE"
# two-letter codes that are languages (lower case) rather than countries
_LANGS = frozenset({"en", "es", "fr", "de", "it", "pt", "nl", "sv", "no", "nb", "nn", "da", "fi", "pl", "el",
                    "he", "hi", "ja", "ko", "zh", "ru", "ar", "tr", "ga", "ca", "eu", "gl", "cy", "mi", "tl"})


@dataclasses.dataclass(frozen=True)
class Locale:
    """A parsed locale: ISO country (or None) and language (or None)."""

    country: str | None
    language: str | None
    raw: str | None = None


@dataclasses.dataclass(frozen=True)
class HelplineTable:
    countries: dict[str, dict[str, Any]]
    global_resources: tuple[Resource, ...]
    notice: str
    compiled: str
    aliases: dict[str, str]


def _resource(entry: dict[str, Any], country: str | None) -> Resource:
    checked = entry.get("checked")
    return Resource(
        name=entry["name"], phone=entry.get("phone"), sms=entry.get("sms"), url=entry.get("url"), country=country,
        kind=entry.get("kind", "crisis_line"), hours=entry.get("hours"), source=entry.get("source"),
        checked=dt.date.fromisoformat(checked) if checked else None, languages=tuple(entry.get("languages", ())),
        topics=tuple(entry.get("topics", ("suicide",))), note=entry.get("note"),
    )


@functools.lru_cache(maxsize=2)
def load_helplines(path: str | None = None) -> HelplineTable:
    """The curated table (cached)."""
    from mentalens.paths import package_resource

    p = path or str(package_resource("safety", "helplines.json"))
    try:
        with open(p, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"helpline table {p} cannot be read ({exc}): reinstall mentalens or fix the file") from None
    countries: dict[str, dict[str, Any]] = {}
    aliases: dict[str, str] = {}
    for code, entry in doc["countries"].items():
        countries[code] = {
            "name": entry["name"],
            "languages": tuple(entry.get("languages", ())),
            "resources": tuple(_resource(r, code) for r in entry["resources"]),
        }
        aliases[code.lower()] = code
        for a in entry.get("aliases", ()):
            aliases[_fold(a)] = code
    glob = tuple(_resource(r, None) for r in doc["global"])
    return HelplineTable(countries, glob, doc.get("notice", ""), doc.get("compiled", ""), aliases)


def _fold(s: str) -> str:
    import unicodedata

    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if not unicodedata.combining(c)).strip().lower()


def parse_locale(locale: str | None) -> Locale:
    """Accepts "US", "en-US", "es_MX", "GB", "uk", "es", "fr_FR.UTF-8", "Spain"; unknown parts become None."""
    if locale is None or not str(locale).strip():
        env = os.environ.get(LOCALE_ENV)
        if not env:
            return Locale(None, None, None)
        locale = env
    raw = str(locale).strip()
    table = load_helplines()
    text = raw.split(".")[0].split("@")[0]
    folded = _fold(text)
    if folded in table.aliases and (len(folded) > 2 or folded in ("uk", "us") or text.isupper()):
        code = table.aliases[folded]
        langs = table.countries[code]["languages"]
        return Locale(code, langs[0] if langs else None, raw)
    parts = [p for p in re.split(r"[-_\s]+", text) if p]
    if not parts:
        return Locale(None, None, raw)
    if len(parts) == 1:
        p = parts[0]
        if p.lower() in _LANGS and not p.isupper():
            return Locale(None, p.lower(), raw)
        code = table.aliases.get(p.lower()) if len(p) == 2 else None
        return Locale(code, None, raw) if code else Locale(None, None, raw)
    lang = parts[0].lower() if parts[0].lower() in _LANGS or len(parts[0]) in (2, 3) else None
    region = parts[-1]
    code = table.aliases.get(region.lower()) if region.isalpha() and len(region) == 2 else None
    if code is None and region.isalpha() and len(region) == 2:
        code = region.upper() if region.upper() in table.countries else None
    return Locale(code, lang, raw)


def resources_for(locale: str | None = None, topics: tuple[str, ...] | None = None) -> list[Resource]:
    """The crisis lines and emergency number for a locale; the global fallback (a helpline directory and
    "your local emergency number") for any locale not in the table. `topics` adds e.g. ("abuse",) lines."""
    table = load_helplines()
    loc = parse_locale(locale)
    wanted = {"suicide", "mental_health", "emergency", *(topics or ())}
    if loc.country and loc.country in table.countries:
        res = [r for r in table.countries[loc.country]["resources"]
               if r.kind == "emergency" or set(r.topics) & wanted]
        # crisis lines for the main topics first, then extra-topic lines, then the emergency number
        res.sort(key=lambda r: (r.kind == "emergency", not ({"suicide", "mental_health"} & set(r.topics))))
        return res
    return list(table.global_resources)


def emergency_number(locale: str | None = None) -> Resource:
    """The emergency resource for a locale (the global "local emergency number" when unknown)."""
    for r in resources_for(locale):
        if r.kind == "emergency":
            return r
    return next(r for r in load_helplines().global_resources if r.kind == "emergency")


def countries() -> dict[str, str]:
    """ISO code -> country name of every country in the table."""
    return {code: c["name"] for code, c in load_helplines().countries.items()}

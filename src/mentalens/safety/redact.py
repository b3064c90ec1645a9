"""PII redaction for anything stored or exported: emails, phone numbers, URLs, handles, IPs, ID/card numbers,
street addresses and personal names where the text makes them detectable ("my name is ...", "my friend Sam").

Rules, not a model: predictable, fast and offline. Names without such a cue are not found (a known limit).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+|\b(?:[a-z0-9-]+\.)+(?:com|org|net|io|co|uk|es|mx|de|fr|it|"
                  r"edu|gov|info|me|ly|app|dev|ai|tv|gg|be|ar|cl|pe|br|ca|au|nz|in)\b(?:/[^\s<>\"')\]]*)?",
                  re.IGNORECASE)
_IP = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_DATE = re.compile(r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})$")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,5}){1,5}(?![\w])")
_HANDLE = re.compile(r"(?<![\w@/])@[A-Za-z0-9_][A-Za-z0-9_.]{1,29}\b|\bu/[A-Za-z0-9_-]{3,20}\b")
_STREET = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Close|"
           r"Crescent|Parkway|Pkwy|Highway|Hwy|Square|Sq)")
_ADDRESS = re.compile(
    r"\b\d{1,5}[A-Za-z]?\s+(?:[NSEW]\.?\s+)?(?:[A-Z][a-zA-Z'-]+\s+){1,3}" + _STREET + r"\b\.?"
    r"(?:,?\s+(?:Apt|Apartment|Suite|Unit|Flat)\.?\s*#?\w+)?"
    r"|\b(?:Calle|C/|Avenida|Avda\.?|Av\.|Plaza|Paseo|Camino|Carrera|Cra\.?|Rua|Rue|Via|Strasse|Straße)\s+"
    r"(?:(?:de|del|la|las|los|el)\s+)?(?:[A-ZÁÉÍÓÚÑ][\wáéíóúñ'-]+\s*){1,4},?\s*(?:n[ºo°.]?\s*)?\d{1,5}\w?"
    r"|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")
_NAME_WORD = r"[A-ZÁÉÍÓÚÑ][a-záéíóúñ'-]+"
_NAME_CUES = re.compile(
    r"(?:\b(?:[Mm]y name is|[Mm]y name's|[Cc]all me|[Tt]his is|[Ii]t's|[Mm]e llamo|[Mm]i nombre es|[Nn]amed|"
    r"[Dd]ear|[Hh]i|[Hh]ello|[Hh]ey|[Tt]hanks|[Tt]hank you|[Rr]egards|[Cc]heers|[Ll]ove|[Ss]incerely|[Ss]aludos|"
    r"[Gg]racias|[Hh]ola)[,:]?\s+)"
    r"(" + _NAME_WORD + r"(?:\s+" + _NAME_WORD + r")?)")
_TITLE = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof|Sr|Sra|Srta|Don|Doña)\.?\s+(" + _NAME_WORD + r"(?:\s+" + _NAME_WORD
                    + r")?)")
_RELATION = re.compile(
    r"\b(?:[Mm]y|[Oo]ur|[Mm]i|[Mm]is)\s+(?:best\s+)?(?:friend|boyfriend|girlfriend|husband|wife|partner|brother|"
    r"sister|son|daughter|mom|mum|mother|dad|father|boss|therapist|teacher|coworker|colleague|roommate|ex|cousin|"
    r"uncle|aunt|neighbou?r|amig[oa]|novi[oa]|herman[oa]|hij[oa]|jef[ea]|pareja|espos[oa]|mam[aá]|pap[aá]),?\s+"
    r"(" + _NAME_WORD + r"(?:\s+" + _NAME_WORD + r")?)")
_IM_NAME = re.compile(r"\b(?:I'm|I am|Im|Soy)\s+(" + _NAME_WORD + r")(?=[\s,.!]|$)")
# capitalised words that follow the cues above without being names
_NOT_NAMES = frozenset("""I Im The A An And But So Not Just Really Very Sorry Fine Okay Ok Good Bad Sad Tired Here There
Today Tomorrow Yesterday Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May
June July August September October November December Everyone Everybody All You It This That What When Why How
Thanks Thank Please Hello Hi Hey Dear Love Mom Mum Dad Mother Father Sir Madam God Jesus Lord English Spanish
Going Feeling Scared Afraid Worried Anxious Depressed Lonely Alone Happy Angry Done Lost Stuck Struck Dying Ready
Still Always Never Sometimes Also Therapy Doctor Team Guys Folks Everyone Todos Gracias Hola Bien Mal Aqui Muy
Nothing Something Someone Nobody Anyone""".split())


def _phone(m: re.Match[str]) -> str:
    s = m.group()
    digits = re.sub(r"\D", "", s)
    if _DATE.match(s.strip()) or not 7 <= len(digits) <= 15:
        return s
    if len(digits) >= 13 and not s.strip().startswith("+"):
        return "[ID]"
    if re.fullmatch(r"\d+", s) and len(digits) < 9:  # a bare 7-8 digit number is more often an amount or code
        return s
    return "[PHONE]"


def _name_sub(placeholder: str = "[NAME]") -> Callable[[re.Match[str]], str]:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        first = name.split()[0]
        if first in _NOT_NAMES:
            return m.group()
        words = name.split()
        if len(words) == 2 and words[1] in _NOT_NAMES:
            name = words[0]
        start = m.start(1) - m.start()
        return m.group()[:start] + placeholder + m.group()[start + len(name):]

    return sub


def redact(text: str) -> str:
    """Replace personal data with placeholders ([EMAIL], [PHONE], [URL], [HANDLE], [IP], [ID], [ADDRESS], [NAME])."""
    if not isinstance(text, str):
        from mentalens.errors import DataError

        raise DataError(f"redact() takes text, not {type(text).__name__}: pass a string")
    if not text:
        return text
    t = _EMAIL.sub("[EMAIL]", text)
    t = _URL.sub("[URL]", t)
    t = _IP.sub("[IP]", t)
    t = _SSN.sub("[ID]", t)
    t = _ADDRESS.sub("[ADDRESS]", t)
    t = _PHONE.sub(_phone, t)
    t = _HANDLE.sub("[HANDLE]", t)
    t = _TITLE.sub(_name_sub(), t)
    t = _RELATION.sub(_name_sub(), t)
    t = _NAME_CUES.sub(_name_sub(), t)
    t = _IM_NAME.sub(_name_sub(), t)
    return t

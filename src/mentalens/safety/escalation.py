"""Escalation: what mentalens itself says and shows at each risk level, whatever the model does.

Policy (one entry per level, in a registry rather than an if-chain):
  low       gentle support and where to find help
  moderate  resources first, then asks about safety
  high      urges contacting a crisis line or emergency services now
  imminent  the emergency number first
Flags add their own line (medical emergency -> emergency number first; abuse -> an abuse line; harm to
others; someone else at risk). Text follows safe-messaging guidance: no method details, no "committed
suicide", hope and concrete help named. Spanish for Spanish conversations or locales.
"""

from __future__ import annotations

import dataclasses

from mentalens.registry import Registry
from mentalens.safety.helplines import load_helplines, parse_locale, resources_for
from mentalens.safety.types import FLAG_NAMES, Resource, RiskAssessment, RiskLevel


@dataclasses.dataclass(frozen=True)
class LevelPolicy:
    level: RiskLevel
    emergency_first: bool  # the emergency number leads the resources and the text
    include_emergency: bool  # the emergency number is shown at all
    max_lines: int  # how many crisis lines to name in the text


POLICIES: Registry[LevelPolicy] = Registry("risk level policy")
POLICIES.register("none", LevelPolicy(RiskLevel.NONE, False, False, 0))
POLICIES.register("low", LevelPolicy(RiskLevel.LOW, False, False, 1))
POLICIES.register("moderate", LevelPolicy(RiskLevel.MODERATE, False, True, 2))
POLICIES.register("high", LevelPolicy(RiskLevel.HIGH, False, True, 2))
POLICIES.register("imminent", LevelPolicy(RiskLevel.IMMINENT, True, True, 1))

# ------------------------------------------------------------------------------------------- templates
_T = {
    "en": {
        "low": ("It sounds like you are carrying a lot right now, and I'm glad you said something. You don't have "
                "to go through this alone: talking with someone can really help. {lines_sentence} If things get "
                "worse, or you start thinking about ending your life, please reach out to them straight away."),
        "moderate": ("Thank you for telling me. Thoughts of suicide can feel overwhelming, and you deserve support "
                     "right now. {lines_sentence} {emergency_sentence} Can I ask: are you safe right now? "
                     "These feelings can change with help, and people do get through this."),
        "high": ("I'm really concerned about your safety. Please contact a crisis line now. {lines_sentence} "
                 "{emergency_sentence} If you can, put distance between yourself and anything you could use to "
                 "hurt yourself, and let someone you trust know how you are feeling. You deserve help, and "
                 "things can get better with support."),
        "imminent": ("{emergency_now} If you can't call, ask someone near you to call for you or go to the nearest "
                     "emergency department. Your life matters, and help can reach you right now. "
                     "{lines_sentence}"),
        "medical_emergency": ("If someone has taken too much of a medicine, is bleeding heavily, can't breathe or "
                              "won't wake up, {emergency_call} now."),
        "abuse": ("What you are describing is not okay, and it is not your fault. If you are in danger right now, "
                  "{emergency_call}. {abuse_sentence}"),
        "harm_to_others": ("If you feel you might hurt someone, please step away from them and from anything you "
                           "could use, and talk to someone now. {lines_sentence_short} If anyone is in immediate "
                           "danger, {emergency_call}."),
        "others_at_risk": ("It's good that you are looking out for them. If they are in immediate danger, "
                           "{emergency_call}. Crisis lines also support people who are worried about someone "
                           "else. {lines_sentence_short}"),
        "lines_one": "You can reach {line}, free and confidential.",
        "lines_many": "You can reach {lines}; they are free and confidential.",
        "lines_short": "{line} can help.",
        "emergency_sentence": ("If you feel you might act on these thoughts, {emergency_call} or go to the nearest "
                               "emergency department."),
        "emergency_now": "Please {emergency_call} now.",
        "emergency_call_number": "call {number}",
        "emergency_call_local": "call your local emergency number",
        "abuse_sentence": "You can talk to {line}.",
        "abuse_none": "A crisis line can help you think through what to do next and stay safe.",
        "directory": "You can find a free helpline in your country at {url}.",
        "or": " or ",
    },
    "es": {
        "low": ("Parece que estás cargando con mucho ahora mismo, y me alegra que lo hayas dicho. No tienes que "
                "pasar por esto a solas: hablar con alguien puede ayudar de verdad. {lines_sentence} Si las cosas "
                "empeoran o empiezas a pensar en quitarte la vida, por favor contacta con ellos enseguida."),
        "moderate": ("Gracias por contármelo. Los pensamientos de suicidio pueden ser abrumadores, y mereces apoyo "
                     "ahora mismo. {lines_sentence} {emergency_sentence} ¿Puedo preguntarte si estás a salvo ahora "
                     "mismo? Estos sentimientos pueden cambiar con ayuda, y otras personas han salido adelante."),
        "high": ("Me preocupa mucho tu seguridad. Por favor, contacta ahora con una línea de crisis. "
                 "{lines_sentence} {emergency_sentence} Si puedes, aléjate de cualquier cosa que pudieras usar "
                 "para hacerte daño y cuéntale a alguien de confianza cómo te sientes. Mereces ayuda, y las cosas "
                 "pueden mejorar con apoyo."),
        "imminent": ("{emergency_now} Si no puedes llamar, pide a alguien cercano que llame por ti o ve a urgencias "
                     "del hospital más cercano. Tu vida importa, y la ayuda puede llegar ahora mismo. "
                     "{lines_sentence}"),
        "medical_emergency": ("Si alguien ha tomado demasiado de un medicamento, sangra mucho, no puede respirar o "
                              "no despierta, {emergency_call} ahora."),
        "abuse": ("Lo que describes no está bien y no es culpa tuya. Si estás en peligro ahora mismo, "
                  "{emergency_call}. {abuse_sentence}"),
        "harm_to_others": ("Si sientes que podrías hacer daño a alguien, aléjate de esa persona y de cualquier cosa "
                           "que pudieras usar, y habla con alguien ahora. {lines_sentence_short} Si alguien está en "
                           "peligro inmediato, {emergency_call}."),
        "others_at_risk": ("Es bueno que te preocupes por esa persona. Si está en peligro inmediato, "
                           "{emergency_call}. Las líneas de crisis también atienden a quien está preocupado por "
                           "otra persona. {lines_sentence_short}"),
        "lines_one": "Puedes contactar con {line}, de forma gratuita y confidencial.",
        "lines_many": "Puedes contactar con {lines}; son gratuitas y confidenciales.",
        "lines_short": "{line} puede ayudarte.",
        "emergency_sentence": ("Si sientes que podrías actuar según estos pensamientos, {emergency_call} o ve a "
                               "urgencias."),
        "emergency_now": "Por favor, {emergency_call} ahora.",
        "emergency_call_number": "llama al {number}",
        "emergency_call_local": "llama al número de emergencias de tu país",
        "abuse_sentence": "Puedes hablar con {line}.",
        "abuse_none": "Una línea de crisis puede ayudarte a pensar qué hacer y a mantenerte a salvo.",
        "directory": "Puedes encontrar una línea de ayuda gratuita en tu país en {url}.",
        "or": " o ",
    },
}
LANGUAGES = tuple(_T)


def _describe(r: Resource, lang: str) -> str:
    t = {"en": ("call", "text", "or"), "es": ("llama al", "escribe al", "o")}[lang]
    bits = []
    if r.phone:
        bits.append(f"{t[0]} {r.phone}")
    if r.sms:
        bits.append(f"{t[1]} {r.sms}")
    how = f" {t[2]} ".join(bits) if bits else (r.url or "")
    return f"{r.name} ({how})" if how else r.name


def order_resources(resources: list[Resource], level: RiskLevel, flags: dict[str, bool]) -> list[Resource]:
    """Resources in the order the policy shows them (emergency first for imminent or a medical emergency)."""
    policy = POLICIES.get(level.value)
    emergency_first = policy.emergency_first or flags.get("medical_emergency", False)
    show_emergency = policy.include_emergency or any(flags.values())
    res = [r for r in resources if r.kind != "emergency" or show_emergency]
    return sorted(res, key=lambda r: (0 if (r.kind == "emergency") == emergency_first else 1))


def escalation_text(assessment: RiskAssessment, locale: str | None = None) -> str | None:
    """The message mentalens adds for this assessment (None when nothing needs escalating)."""
    if not assessment.requires_escalation:
        return None
    loc_str = locale if locale is not None else assessment.locale
    loc = parse_locale(loc_str)
    lang = assessment.language if assessment.language in _T else (loc.language if loc.language in _T else "en")
    if loc.language in _T and assessment.language not in _T:
        lang = loc.language
    t = _T[lang]
    flags = {k: bool(assessment.flags.get(k)) for k in FLAG_NAMES}
    topics = ("abuse",) if flags["abuse"] else None
    resources = resources_for(loc_str, topics)
    crisis = [r for r in resources if r.kind == "crisis_line" and {"suicide", "mental_health"} & set(r.topics)]
    abuse_lines = [r for r in resources if r.kind == "crisis_line" and "abuse" in r.topics]
    directory = [r for r in resources if r.kind == "directory"]
    emergency = next((r for r in resources if r.kind == "emergency"), None)
    if emergency is not None and emergency.phone:
        emergency_call = t["emergency_call_number"].format(number=emergency.phone)
    else:
        emergency_call = t["emergency_call_local"]
    policy = POLICIES.get(assessment.level.value)

    def lines_sentence(n: int) -> str:
        if crisis:
            suicide_lines = [r for r in crisis if "suicide" in r.topics]
            pick = suicide_lines[: max(n, 1)] if suicide_lines else crisis[:1]
            chosen = [_describe(r, lang) for r in pick]
            key = "lines_one" if len(chosen) == 1 else "lines_many"
            return t[key].format(line=chosen[0], lines=t["or"].join(chosen))
        url = directory[0].url if directory else "https://findahelpline.com"
        return t["directory"].format(url=url)

    def short() -> str:
        if crisis:
            return t["lines_short"].format(line=_describe(crisis[0], lang))
        url = directory[0].url if directory else "https://findahelpline.com"
        return t["directory"].format(url=url)

    fields = {
        "lines_sentence": lines_sentence(policy.max_lines),
        "lines_sentence_short": short(),
        "emergency_sentence": t["emergency_sentence"].format(emergency_call=emergency_call),
        "emergency_now": t["emergency_now"].format(emergency_call=emergency_call),
        "emergency_call": emergency_call,
        "abuse_sentence": (t["abuse_sentence"].format(line=_describe(abuse_lines[0], lang)) if abuse_lines
                           else t["abuse_none"]),
    }
    parts: list[str] = []
    if flags["medical_emergency"] and assessment.level < RiskLevel.IMMINENT:
        parts.append(t["medical_emergency"].format(**fields))
    if assessment.level >= RiskLevel.LOW:
        parts.append(t[assessment.level.value].format(**fields))
    if flags["abuse"]:
        parts.append(t["abuse"].format(**fields))
    if flags["harm_to_others"]:
        parts.append(t["harm_to_others"].format(**fields))
    if flags["others_at_risk"] and assessment.level < RiskLevel.MODERATE:
        parts.append(t["others_at_risk"].format(**fields))
    if flags["medical_emergency"] and assessment.level >= RiskLevel.IMMINENT:
        parts.insert(1, t["medical_emergency"].format(**fields))
    return " ".join(" ".join(p.split()) for p in parts if p)


def notice_for(locale: str | None = None) -> str:
    """The table's re-check notice (for docs and the CLI)."""
    del locale
    return load_helplines().notice

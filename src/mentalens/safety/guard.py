"""The output guard: every generated reply is checked before it reaches the person.

Pure rules (regexes + the risk assessment), so it works whatever the backend does. It catches method or
lethality details, encouragement of self-harm, a diagnosis stated as fact, medication or dosing advice,
claims to be a human or a licensed clinician, and replies that ignore a flagged risk. A failing reply is
regenerated once with a stricter instruction (when the caller can) or replaced by a safe reply written by
mentalens. Interventions are counted by type; reply text is never logged or stored.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import Counter
from collections.abc import Callable

from mentalens.registry import Registry
from mentalens.safety.escalation import escalation_text
from mentalens.safety.normalize import normalize
from mentalens.safety.types import RiskAssessment, RiskLevel


@dataclasses.dataclass
class GuardResult:
    """ok: the reply passed as written. violations: what the ORIGINAL reply broke. reply: the text to show."""

    ok: bool
    violations: list[str]
    reply: str
    action: str = "passed"  # passed | regenerated | replaced

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_DRUGS = (r"(?:paracetamol|acetaminophen|tylenol|ibuprofen|advil|aspirin|sertraline|zoloft|fluoxetine|prozac|"
          r"citalopram|celexa|escitalopram|lexapro|paroxetine|paxil|venlafaxine|effexor|duloxetine|cymbalta|"
          r"bupropion|wellbutrin|mirtazapine|trazodone|amitriptyline|xanax|alprazolam|valium|diazepam|lorazepam|"
          r"ativan|klonopin|clonazepam|lithium|lamotrigine|quetiapine|seroquel|olanzapine|risperidone|"
          r"aripiprazole|abilify|adderall|ritalin|methylphenidate|melatonin|benadryl|diphenhydramine|zolpidem|"
          r"ambien|oxycodone|codeine|tramadol|fentanyl|morphine|insulin|antidepressants?|ssris?|snris?|benzos?|"
          r"benzodiazepines?|sleeping\s+pills|opioids?|painkillers?)")
_UNITS = r"(?:mg|milligrams?|mcg|micrograms?|g|grams?|ml|units?|pills?|tablets?|capsules?|mg/kg)"
_SENT = re.compile(r"[^.!?\n]+[.!?\n]?")

# ------------------------------------------------------------------------------------------------ checks
_METHOD = [re.compile(p) for p in (
    r"(?:lethal|fatal|deadly|toxic|mortal|letal)\s+(?:dose|amount|dosage|level|quantity|dosis)[^.!?]{0,80}?\d",
    r"\d+\s*" + _UNITS + r"\b[^.!?]{0,80}?(?:lethal|fatal|deadly|kill\s+(?:you|a\s+person|someone)|enough\s+to\s+"
    r"(?:die|kill|stop)|cause\s+death|be\s+fatal|stop\s+your\s+heart|letal|mortal)",
    r"(?:lethal|fatal|deadly|kill\s+you|overdose|die)[^.!?]{0,60}?\b\d+\s*" + _UNITS + r"\b",
    r"(?:painless|painlessly|quickest|quick|easiest|surest|most\s+effective|best|reliable|certain)\s+(?:way|method|"
    r"methods|ways|means)\s+(?:to|of|for)\s+(?:die|dying|kill(?:ing)?\s+yourself|suicide|end(?:ing)?\s+your\s+life)",
    r"(?:tie|make|tying|making)\s+(?:a\s+)?noose|noose\s+(?:knot|by|using|from)|exit\s+bag|helium\s+(?:hood|bag)",
    r"(?:cut|slit|slice|cutting)\s+(?:vertically|lengthwise|deep(?:ly)?|along\s+the\s+(?:vein|artery)|down\s+the\s+"
    r"(?:arm|wrist))",
    r"(?:sever|severing|cut|cutting|hit)\s+(?:the|your|an?)\s+(?:carotid|femoral|radial|main)\s+(?:artery|vein)",
    r"(?:height|fall|drop)\s+of\s+(?:at\s+least\s+|over\s+|about\s+)?\d+\s*(?:m|meters|metres|feet|ft|stories|storeys|"
    r"floors)\b[^.!?]{0,60}?(?:fatal|lethal|survive|death|die|kill)",
    r"(?:\d+|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|fifty|hundred)\s+"
    r"(?:floors?|stor(?:e?y|ies|eys)|metres|meters|feet)\b[^.!?]{0,60}?(?:fatal|lethal|survive|death|die|kill)",
    r"(?:here\s+is|heres|this\s+is|that\s+is|thats)\s+how\s+(?:to|you\s+(?:can|could))\s+(?:overdose|od|kill\s+yourself|"
    r"hang\s+yourself|end\s+your\s+life|die|commit\s+suicide)",
    r"(?:swallow|take|down)\s+(?:the\s+|a\s+|your\s+)?(?:whole|entire|full)\s+(?:bottle|pack|packet|box|strip|blister)",
    r"(?:mix|mixing|combine|combining)\s+[\w\s]{1,30}?\s+(?:with|and)\s+[\w\s]{1,30}?\s+(?:to|will|can|would)\s+"
    r"(?:stop\s+your\s+(?:breathing|heart)|be\s+fatal|kill|die|cause\s+death)",
    r"(?:carbon\s+monoxide|charcoal)\s+(?:in|inside)\s+(?:a|your)\s+(?:closed|sealed|car|room|garage|tent)",
    r"(?:how\s+to|you\s+can|you\s+could|just)\s+(?:hang|overdose|od|drown|suffocate|poison)\s+(?:yourself|on)",
    r"\d+\s*(?:or\s+more\s+)?(?:" + _UNITS + r"\s+(?:of\s+)?)?" + _DRUGS + r"[^.!?]{0,60}?(?:fatal|lethal|kill|die|"
    r"death|organ\s+failure|liver\s+failure|stop\s+your\s+heart|not\s+wake\s+up)",
    r"dosis\s+(?:letal|mortal)", r"(?:forma|manera)\s+(?:mas\s+)?(?:indolora|rapida|facil|segura)\s+de\s+(?:morir|"
    r"suicidarte|matarte)",
)]
_ENCOURAGE = [re.compile(p) for p in (
    r"\bkys\b",
    r"(?:you\s+should|go\s+ahead\s+and|why\s+not|maybe\s+you\s+should|i\s+think\s+you\s+should|you\s+could\s+just|"
    r"you\s+might\s+as\s+well|just)\s+(?:just\s+)?(?:kill\s+yourself|end\s+(?:it\s+all|your\s+(?:own\s+)?life)|"
    r"hurt\s+yourself|cut\s+yourself|take\s+(?:all\s+)?(?:the|those|your)\s+pills|commit\s+suicide|die\b)",
    r"(?:everyone|everybody|the\s+world|your\s+family|they|people)\s+(?:would|will)\s+be\s+(?:better|happier)\s+"
    r"(?:off\s+)?without\s+you",
    r"(?:no\s+one|nobody|noone)\s+(?:would|will)\s+(?:miss|care\s+about|notice)\s+you",
    r"you\s+(?:are|re)\s+(?:just\s+)?a\s+burden|you\s+deserve\s+to\s+(?:die|suffer|be\s+dead)",
    r"(?:suicide|dying|death|ending\s+(?:it|your\s+life))\s+(?:is|would\s+be|might\s+be|could\s+be|sounds\s+like)\s+"
    r"(?:a|the|an)\s+(?:good|reasonable|valid|rational|right|brave|smart|logical|only|best|understandable)\s+"
    r"(?:choice|option|answer|solution|way|idea|decision)",
    r"(?:your|the)\s+(?:choice|decision|right)\s+to\s+(?:end\s+your\s+life|die|kill\s+yourself)[^.!?]{0,40}?"
    r"(?:okay|ok|fine|valid|respect|support)",
    r"(?:you\s+are|youre)\s+right\s+(?:to\s+want\s+to\s+die|that\s+(?:you\s+should|life\s+is\s+not\s+worth))",
    r"life\s+(?:is\s+not|isnt)\s+worth\s+living\s+for\s+you|your\s+life\s+(?:is\s+)?(?:worthless|meaningless)",
    r"deberias\s+(?:matarte|suicidarte|morirte|hacerlo)|matate|estarian\s+mejor\s+sin\s+ti",
)]
_ENCOURAGE_AT_RISK = [re.compile(p) for p in (  # harmful only as a reply to someone at risk
    r"(?:sounds|seems|looks)\s+like\s+a\s+(?:fun|good|great|nice|solid|reasonable|fine|smart)\s+(?:plan|idea|choice)",
    r"(?:go\s+ahead|do\s+it|you\s+should\s+do\s+it|i\s+support\s+your\s+decision|i\s+respect\s+your\s+decision|"
    r"if\s+that\s+is\s+what\s+you\s+want|if\s+thats\s+what\s+you\s+want|hazlo)\b",
    r"(?:^|[.!?,]\s*)adelante\s*[,.!]",
)]
_DISORDERS = (r"(?:(?:clinical|major|severe|mild|moderate|chronic|postpartum|seasonal|persistent)\s+)*(?:depression|"
              r"depressive\s+disorder|bipolar(?:\s+disorder)?|bpd|borderline(?:\s+personality\s+disorder)?|ptsd|"
              r"c-?ptsd|ocd|adhd|add|(?:an?\s+)?anxiety\s+disorder|generali[sz]ed\s+anxiety(?:\s+disorder)?|gad|"
              r"schizophrenia|psychosis|(?:an?\s+)?eating\s+disorder|anorexia|bulimia|autism|asd|(?:a\s+)?personality"
              r"\s+disorder|mdd|dysthymia|panic\s+disorder|(?:a\s+)?mental\s+illness|social\s+anxiety(?:\s+disorder)?|"
              r"depresion|ansiedad|trastorno\s+\w+)")
_DIAGNOSIS = [re.compile(p) for p in (
    r"\byou\s+(?:clearly\s+|definitely\s+|obviously\s+|certainly\s+|surely\s+|absolutely\s+)?(?:have|got|(?:are|re)\s+"
    r"(?:clearly\s+|definitely\s+|obviously\s+|certainly\s+)?suffering\s+from|suffer\s+from|are\s+diagnosed\s+with|"
    r"meet\s+(?:the\s+)?criteria\s+for)"
    r"\s+(?:a\s+|an\s+)?" + _DISORDERS + r"\b",
    r"\byou\s*(?:are|re)\s+(?:clearly\s+|definitely\s+|obviously\s+|certainly\s+)?(?:clinically\s+depressed|bipolar|"
    r"schizophrenic|psychotic|autistic|anorexic|bulimic|borderline|mentally\s+ill|depressed|a\s+depressive)\b",
    r"(?:this|that|it|what\s+you\s+(?:describe|are\s+describing))\s+is\s+(?:definitely\s+|clearly\s+|certainly\s+|"
    r"obviously\s+)?(?:a\s+(?:clear\s+|textbook\s+|classic\s+|typical\s+)?case\s+of\s+)?" + _DISORDERS + r"\b",
    r"(?:my|the)\s+diagnosis\s+(?:is|would\s+be)|i\s+(?:can\s+)?diagnose\s+you|your\s+diagnosis\s+is",
    r"\b(?:tienes|sufres\s+de|padeces)\s+(?:una\s+|un\s+)?" + _DISORDERS + r"|\beres\s+(?:bipolar|depresiv[oa])",
)]
_DIAGNOSIS_HEDGE = re.compile(r"\b(?:whether|if|might|may|could|can\s?t\s+(?:tell|say|know)|cannot\s+(?:tell|say|"
                              r"diagnose)|not\s+able\s+to|only\s+a|a\s+professional|not\s+(?:saying|sure)|"
                              r"dont\s+know|no\s+se\s+si|si\s+tienes)\b")
_FEW = r"(?:a\s+couple\s+(?:of\s+)?|a\s+few\s+|a\s+handful\s+of\s+|one|two|three|four|five|some\s+more\s+|another\s+)"
_MEDICATION = [re.compile(p) for p in (
    r"\b(?:take|try|pop|swallow|have)\s+(?:just\s+)?" + _FEW + r"\s*(?:(?:of\s+)?(?:your|the|my|those)\s+)?"
    + _DRUGS + r"\b",
    r"\byou\s+(?:dont|do\s+not)\s+(?:really\s+)?need\s+(?:your|the|those|any|to\s+take\s+(?:your|the|those|any))\s+(?:"
    + _DRUGS + r"|medications?|meds|medicine|prescription)\b",
    r"\b(?:take|try|start|increase|double|decrease|reduce|lower|raise|up|stop|quit|skip|halve|cut\s+back\s+on|"
    r"come\s+off|wean\s+(?:yourself\s+)?off)\s+(?:taking\s+)?(?:your\s+|some\s+|an?\s+|the\s+|more\s+|less\s+|"
    r"extra\s+)?(?:dose\s+of\s+(?:your\s+)?)?(?:\d+\s*" + _UNITS + r"\s+(?:of\s+)?)?(?:" + _DRUGS + r"|medications?|"
    r"meds|medicine|dose|dosage|prescription)\b",
    r"\b(?:you\s+(?:can|could|should|might)|try|take|i\s+(?:recommend|suggest))\b[^.!?]{0,40}?\b\d+\s*"
    r"(?:mg|milligrams?|mcg)\b",
    r"\b\d+\s*(?:mg|milligrams?|mcg)\s+(?:of\s+)?" + _DRUGS + r"\b[^.!?]{0,40}?(?:should|will|would)\s+(?:help|work|"
    r"be\s+(?:fine|enough|safe))",
    r"\b(?:toma|tomate|aumenta|duplica|deja\s+de\s+tomar|reduce)\s+(?:\d+\s*mg|la\s+dosis|tu\s+(?:medicacion|"
    r"medicamento|tratamiento))",
)]
_MEDICATION_SAFE = re.compile(r"\b(?:dont|do\s+not|never|before\s+(?:you\s+)?(?:stop|change|start)|without\s+"
                              r"(?:talking|speaking|checking|consulting|asking)|talk\s+(?:to|with)\s+your|ask\s+your|"
                              r"check\s+with\s+your|consult\s+your|your\s+(?:doctor|pharmacist|psychiatrist|"
                              r"prescriber|gp|nurse)|as\s+prescribed|tu\s+medico|consulta)\b")
_HUMAN = [re.compile(p) for p in (
    r"\bi\s*(?:am|m)\s+(?:a\s+|an\s+)?(?:real\s+)?(?:human(?:\s+being)?|real\s+person|living\s+person|person\s+too|"
    r"flesh\s+and\s+blood)\b",
    r"\bi\s*(?:am|m)\s+(?:a\s+|an\s+|your\s+)?(?:licensed|certified|qualified|registered|trained|professional|"
    r"clinical)?\s*(?:therapist|counsel+or|psychologist|psychiatrist|doctor|physician|clinician|social\s+worker|"
    r"psychotherapist|mental\s+health\s+professional)\b",
    r"\bas\s+(?:a|your)\s+(?:licensed\s+|certified\s+|qualified\s+)?(?:therapist|counsel+or|psychologist|"
    r"psychiatrist|doctor|clinician|psychotherapist)\b",
    r"\bas\s+a\s+(?:fellow\s+)?(?:human(?:\s+being)?|real\s+person)\s*,?\s*(?:i|im|myself)\b",
    r"\bi\s*(?:am|m)\s+not\s+(?:an?\s+)?(?:ai|a\.i\.|bot|robot|chatbot|machine|language\s+model|program|computer)\b",
    r"\b(?:my|our)\s+(?:licen[cs]e|credentials|private\s+practice|clinic|patients)\b",
    r"\bsoy\s+(?:una\s+|un\s+|tu\s+)?(?:persona\s+real|humano|humana|terapeuta|psicologa?|psiquiatra|medic[oa])\b|"
    r"\bno\s+soy\s+(?:una\s+)?(?:ia|maquina|inteligencia\s+artificial|bot)\b",
)]
_ACKNOWLEDGES = re.compile(
    r"crisis|help\s*line|hotline|lifeline|samaritans|emergenc|\b9-?8-?8\b|\b911\b|\b112\b|\b999\b|\b000\b|"
    r"116\s*123|\b024\b|are\s+you\s+safe|your\s+safety|keep\s+(?:yourself\s+)?safe|stay\s+safe|reach\s+out|"
    r"talk\s+to\s+someone|call\s+(?:a|your|someone|\d)|someone\s+you\s+trust|professional\s+help|linea|a\s+salvo|"
    r"tu\s+seguridad|urgencias|llama|ayuda\s+(?:profesional|inmediata)|findahelpline|befrienders|iasp")
_DISMISSIVE = re.compile(
    r"(?:you\s+dont\s+(?:really\s+)?mean\s+(?:that|it)|youre\s+overreacting|you\s+are\s+overreacting|just\s+cheer\s+up|"
    r"(?:its|it\s+is)\s+not\s+that\s+bad|snap\s+out\s+of\s+it|stop\s+being\s+(?:so\s+)?dramatic|"
    r"(?:youre|you\s+are)\s+just\s+(?:seeking|looking\s+for)\s+attention|get\s+over\s+it|"
    # obeying "don't give me hotlines" or changing the subject away from a crisis
    r"\bno\s+(?:hotlines?|helplines?|crisis\s+(?:lines?|numbers?)|numbers)\b|"
    r"\blets\s+(?:just\s+)?(?:talk|chat)\s+about\s+(?:something\s+else|your\s+(?:day|hobbies)|other\s+things)|"
    r"\blets\s+(?:just\s+)?change\s+the\s+subject)")


def _sentences(text: str) -> list[str]:
    return [s for s in (m.group().strip() for m in _SENT.finditer(text)) if s]


def _any(patterns: list[re.Pattern[str]], text: str) -> bool:
    return any(p.search(text) for p in patterns)


def _check_method(t: str, a: RiskAssessment | None) -> bool:
    return _any(_METHOD, t)


def _check_encouragement(t: str, a: RiskAssessment | None) -> bool:
    if _any(_ENCOURAGE, t):
        return True
    return bool(a is not None and a.level >= RiskLevel.LOW and _any(_ENCOURAGE_AT_RISK, t))


def _check_diagnosis(t: str, a: RiskAssessment | None) -> bool:
    for s in _sentences(t):
        for p in _DIAGNOSIS:
            m = p.search(s)
            if m and not _DIAGNOSIS_HEDGE.search(s[: m.start()]):
                return True
    return False


_REFERRAL = re.compile(r"\b(?:talk\s+(?:to|with)\s+your|ask\s+your|check\s+with\s+your|consult\s+your|your\s+(?:doctor|"
                       r"pharmacist|psychiatrist|prescriber|gp|nurse)|as\s+prescribed|tu\s+medico|consulta)\b")


def _check_medication(t: str, a: RiskAssessment | None) -> bool:
    """Advice in a sentence, unless a referral to a prescriber is in it, or a "don't"/"never" comes before the
    advice ("Stop taking your antidepressants, you don't need them" is advice; "Don't stop ..." is not)."""
    for s in _sentences(t):
        for p in _MEDICATION:
            m = p.search(s)
            if m is None:
                continue
            if _REFERRAL.search(s) or _MEDICATION_SAFE.search(s[: m.start()]):
                continue
            return True
    return False


def _check_human(t: str, a: RiskAssessment | None) -> bool:
    return _any(_HUMAN, t)


def _check_ignores_risk(t: str, a: RiskAssessment | None) -> bool:
    if a is None:
        return False
    urgent = a.level >= RiskLevel.MODERATE or any(
        a.flags.get(k) for k in ("medical_emergency", "abuse", "harm_to_others", "others_at_risk"))
    if a.level >= RiskLevel.LOW and _DISMISSIVE.search(t):
        return True
    return urgent and not _ACKNOWLEDGES.search(t)


CHECKS: Registry[Callable[[str, RiskAssessment | None], bool]] = Registry("guard check")
CHECKS.register("method_detail", _check_method)
CHECKS.register("self_harm_encouragement", _check_encouragement)
CHECKS.register("diagnosis_as_fact", _check_diagnosis)
CHECKS.register("medication_advice", _check_medication)
CHECKS.register("claims_human_or_clinician", _check_human)
CHECKS.register("ignores_risk", _check_ignores_risk)
VIOLATIONS = tuple(CHECKS.names())

_SAFE = {
    "en": ("I'm sorry, I can't help with that in a safe way. I'm an AI, not a therapist, and I can't give medical "
           "or diagnostic advice, but I'm here to listen. Would you like to tell me more about how you are feeling?"),
    "es": ("Lo siento, no puedo ayudarte con eso de forma segura. Soy una IA, no un terapeuta, y no puedo dar "
           "consejos médicos ni diagnósticos, pero estoy aquí para escucharte. ¿Quieres contarme más sobre cómo "
           "te sientes?"),
}
_STRICT = (
    "Your previous reply was withheld by the safety guard ({violations}). Write a new, short, supportive reply. "
    "Never describe methods, doses or lethality; never encourage self-harm; never state a diagnosis (you may say "
    "that a professional can assess it); never give medication or dosing advice (refer to a doctor or pharmacist); "
    "never claim to be a human or a licensed clinician (you are an AI). {risk}"
)


def strict_instruction(violations: list[str], assessment: RiskAssessment | None = None) -> str:
    """The stricter system instruction for a regeneration after the guard withheld a reply."""
    risk = ""
    if assessment is not None and assessment.requires_escalation:
        risk = ("The person may be at risk of suicide or self-harm (level: " + assessment.level.value + "): "
                "acknowledge it directly, ask whether they are safe right now, and encourage contacting a crisis "
                "line or emergency services.")
    return _STRICT.format(violations=", ".join(violations) or "unsafe content", risk=risk).strip()


def safe_reply(assessment: RiskAssessment | None = None, locale: str | None = None) -> str:
    """A reply written by mentalens: supportive, no advice, plus the escalation text when there is risk."""
    lang = assessment.language if assessment is not None and assessment.language in _SAFE else "en"
    text = _SAFE[lang]
    if assessment is not None:
        esc = escalation_text(assessment, locale)
        if esc:
            text = esc + "\n\n" + text
    return text


def check_reply(reply: str, assessment: RiskAssessment | None = None) -> list[str]:
    """The names of the checks this reply fails (empty when it is fine)."""
    if not isinstance(reply, str):
        return ["not_text"]
    t = normalize(reply, correct=False).text
    return [name for name, check in CHECKS.items() if check(t, assessment)]


def guard_reply(reply: str, assessment: RiskAssessment | None = None) -> GuardResult:
    """Check one reply; a failing reply is replaced by mentalens's safe reply (see OutputGuard to regenerate)."""
    violations = check_reply(reply, assessment)
    if not violations:
        return GuardResult(True, [], reply, "passed")
    return GuardResult(False, violations, safe_reply(assessment), "replaced")


class OutputGuard:
    """A guard that counts its interventions (by violation type and action), never the text."""

    def __init__(self, max_regenerations: int = 1, locale: str | None = None):
        self.max_regenerations = max_regenerations
        self.locale = locale
        self.interventions: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()
        self._lock = threading.Lock()

    def check(self, reply: str, assessment: RiskAssessment | None = None) -> GuardResult:
        """Check without regenerating (a failing reply is replaced); counts like enforce."""
        return self.enforce(reply, assessment, None)

    def enforce(
        self,
        reply: str,
        assessment: RiskAssessment | None = None,
        regenerate: Callable[[str], str] | None = None,
    ) -> GuardResult:
        """Pass a good reply; otherwise regenerate with a stricter instruction, else replace it."""
        violations = check_reply(reply, assessment)
        if not violations:
            self._count("passed", [])
            return GuardResult(True, [], reply, "passed")
        self._count(None, violations)
        if regenerate is not None:
            for _ in range(self.max_regenerations):
                try:
                    candidate = regenerate(strict_instruction(violations, assessment))
                except Exception:  # a failing backend must not take the safety net down with it
                    break
                if isinstance(candidate, str) and candidate.strip() and not check_reply(candidate, assessment):
                    self._count("regenerated", [])
                    return GuardResult(False, violations, candidate, "regenerated")
        self._count("replaced", [])
        return GuardResult(False, violations, safe_reply(assessment, self.locale), "replaced")

    def _count(self, action: str | None, violations: list[str]) -> None:
        with self._lock:
            if action:
                self.actions[action] += 1
            for v in violations:
                self.interventions[v] += 1

    def stats(self) -> dict[str, dict[str, int]]:
        """Counts only: {"interventions": {...}, "actions": {...}}."""
        with self._lock:
            return {"interventions": dict(self.interventions), "actions": dict(self.actions)}

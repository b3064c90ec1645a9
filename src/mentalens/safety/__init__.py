"""The safety layer: risk assessment, helplines, escalation, output guard, redaction, notices.

It sits in front of and behind every backend and works when the model is down or misbehaves. Importing it
is light (no torch, no sklearn): the chat server calls `assess` on every turn.

    from mentalens.safety import assess, escalation_text, guard_reply, redact
    a = assess("I took all my pills", locale="en-GB")
    a.level            # RiskLevel.IMMINENT
    escalation_text(a) # "Please call 999 now. ..."
"""

from mentalens.safety.assess import assess, detect_language
from mentalens.safety.escalation import POLICIES, escalation_text, order_resources
from mentalens.safety.guard import GuardResult, OutputGuard, guard_reply
from mentalens.safety.helplines import Locale, countries, emergency_number, parse_locale, resources_for
from mentalens.safety.notices import AI_DISCLOSURE, NOT_A_DIAGNOSIS, notices
from mentalens.safety.redact import redact
from mentalens.safety.semantic import status as semantic_status
from mentalens.safety.types import Cue, Resource, RiskAssessment, RiskLevel

__all__ = [
    "AI_DISCLOSURE",
    "NOT_A_DIAGNOSIS",
    "POLICIES",
    "Cue",
    "GuardResult",
    "Locale",
    "OutputGuard",
    "Resource",
    "RiskAssessment",
    "RiskLevel",
    "assess",
    "countries",
    "detect_language",
    "emergency_number",
    "escalation_text",
    "guard_reply",
    "notices",
    "order_resources",
    "parse_locale",
    "redact",
    "resources_for",
    "semantic_status",
]

"""Notices every interface shows: this is an AI, and nothing it says is a diagnosis."""

from __future__ import annotations

AI_DISCLOSURE = (
    "You are talking to an AI (mentalens), not a human or a therapist. It can make mistakes."
)
NOT_A_DIAGNOSIS = (
    "mentalens does not diagnose and is not a substitute for professional care. "
    "If you are in danger, call your local emergency number."
)
AI_DISCLOSURE_ES = "Estás hablando con una IA (mentalens), no con una persona ni con un terapeuta. Puede equivocarse."
NOT_A_DIAGNOSIS_ES = (
    "mentalens no hace diagnósticos ni sustituye la atención profesional. "
    "Si estás en peligro, llama al número de emergencias de tu país."
)
NOTICES = {"en": (AI_DISCLOSURE, NOT_A_DIAGNOSIS), "es": (AI_DISCLOSURE_ES, NOT_A_DIAGNOSIS_ES)}


def notices(language: str = "en") -> tuple[str, str]:
    """(AI disclosure, not-a-diagnosis notice) in a language (English when not available)."""
    return NOTICES.get((language or "en").split("-")[0].lower(), NOTICES["en"])

"""PII redaction for anything stored or exported."""

from __future__ import annotations

import pytest

from mentalens.errors import DataError
from mentalens.safety import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+work@gmail.com please", "write to [EMAIL] please"),
        ("call me on +44 7700 900123 tonight", "call me on [PHONE] tonight"),
        ("my number is (555) 123-4567", "my number is [PHONE]"),
        ("llámame al 612 34 56 78", "llámame al [PHONE]"),
        ("see https://example.com/my/profile?id=3 and www.mysite.org", "see [URL] and [URL]"),
        ("I'm @sad_girl_99 on insta and u/throwaway123 on reddit", "I'm [HANDLE] on insta and [HANDLE] on reddit"),
        ("I live at 221B Baker Street, London", "I live at [ADDRESS], London"),
        ("vivo en Calle Mayor 15, Madrid", "vivo en [ADDRESS], Madrid"),
        ("my postcode is SW1A 1AA", "my postcode is [ADDRESS]"),
        ("My name is Sarah Connor and I'm 17", "My name is [NAME] and I'm 17"),
        ("me llamo Lucía", "me llamo [NAME]"),
        ("my boyfriend Tom left me", "my boyfriend [NAME] left me"),
        ("Dr. Patel said it was anxiety", "Dr. [NAME] said it was anxiety"),
        ("my SSN is 123-45-6789", "my SSN is [ID]"),
        ("server 192.168.0.12 logged it", "server [IP] logged it"),
    ],
)
def test_redacts(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I'm so tired and I want to sleep",
        "I'm Fine, thanks for asking",
        "It happened on 2024-03-05 at 10:30",
        "I've been sad for 3 years and 2 months",
        "I took 2 pills at 8pm",
        "We paid 1,250 dollars for rent",
        "Hi there, how are you?",
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_bad_input() -> None:
    assert redact("") == ""
    with pytest.raises(DataError):
        redact(None)  # type: ignore[arg-type]

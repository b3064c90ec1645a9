"""Errors a user can fix. The CLI prints them as one line and exits with code 2.

Every message names the problem and the fix, e.g. "data folder /x not found: pass --data DIR or run
`mentalens data fetch`". Anything that is not a MentalensError is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MentalensError(Exception):
    """Base class: a problem with input, configuration or environment that the user can fix."""

    exit_code = 2


class DataError(MentalensError):
    """Missing or malformed data: folder, file, column, encoding, empty input."""


class ConfigError(MentalensError):
    """A configuration file or key=value override is invalid."""


class ModelError(MentalensError):
    """A model, adapter or tokenizer cannot be loaded or used as asked."""


class BackendError(MentalensError):
    """A generation backend failed (endpoint down, timeout, bad response)."""


class UnknownNameError(MentalensError, KeyError):
    """A name (task, set, backend, metric, locale...) that is not registered."""

    def __init__(self, kind: str, name: str, choices: Iterable[str]):
        self.kind, self.name, self.choices = kind, name, sorted(choices)
        close = difflib.get_close_matches(str(name), self.choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(f"unknown {kind} {name!r}{hint}; choose one of: {', '.join(self.choices)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])

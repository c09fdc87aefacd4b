"""The one error a rules file can raise: which file, which line, and why."""

from __future__ import annotations


class RuleSyntaxError(ValueError):
    """A line of ``_headers`` or ``_redirects`` (or of the settings' rules) that is not a rule.

    At start it becomes a ConfigError; at a reload it is logged and the last good rules stay.
    """

    def __init__(self, source: str, line: int, why: str) -> None:
        super().__init__(f"{source} line {line}: {why}")
        self.source = source
        self.line = line
        self.why = why

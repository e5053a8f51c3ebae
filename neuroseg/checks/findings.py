"""What an input check found: a level, the measured value and the range the model was validated on."""

from __future__ import annotations

from dataclasses import dataclass, field

from neuroseg.errors import InputError

OK, WARN, REFUSE = "ok", "warn", "refuse"
LEVELS = (OK, WARN, REFUSE)  # in order of severity


@dataclass(frozen=True)
class Finding:
    """One check's result. ``value`` is what was measured (a number, or a short text), in ``unit``."""

    check: str  # "<group>.<name>", e.g. "coverage.field_of_view"
    level: str
    value: object
    unit: str
    validated: str  # the range the model was validated on, in words
    message: str = ""  # why it matters (shown for warn and refuse)

    def __post_init__(self):
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {self.level!r}")

    @property
    def value_text(self) -> str:
        if isinstance(self.value, float):
            text = f"{self.value:.3g}"
        elif isinstance(self.value, (list, tuple)):
            text = " x ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in self.value)
        else:
            text = str(self.value)
        return f"{text} {self.unit}".strip()

    def line(self) -> str:
        """One console line: level, check, measured value, validated range, and why when not ok."""
        text = f"{self.level}: {self.check}: {self.value_text} (validated: {self.validated})"
        return f"{text}: {self.message}" if self.message and self.level != OK else text

    def as_dict(self) -> dict:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"check": self.check, "level": self.level, "value": value, "unit": self.unit,
                "validated": self.validated, "message": self.message, "line": self.line()}


@dataclass
class InputChecks:
    """Every finding on one input, and whether the user forced a run past a refusal."""

    findings: list = field(default_factory=list)
    forced: bool = False

    @property
    def level(self) -> str:
        return max((f.level for f in self.findings), key=LEVELS.index, default=OK)

    def at(self, level: str) -> list:
        return [f for f in self.findings if f.level == level]

    @property
    def flagged(self) -> list:
        """Findings that are not ok (warn or refuse), most severe first."""
        return self.at(REFUSE) + self.at(WARN)

    def as_report(self) -> dict:
        """The report.json section ``input_checks``; ``flagged`` lists the non-ok check names for viewers."""
        return {"level": self.level, "forced": self.forced, "flagged": [f.check for f in self.flagged],
                "findings": [f.as_dict() for f in self.findings]}

    def raise_if_refused(self) -> None:
        refused = self.at(REFUSE)
        if refused and not self.forced:
            raise InputRefused(f"input refused: {refused[0].line()}"
                               + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else "")
                               + "; use --force-input to run anyway")


class InputRefused(InputError):
    """An input check refused the input (exit 2); ``--force-input`` runs anyway."""

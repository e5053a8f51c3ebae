"""What became of each instance sent: stored, or refused and why."""

from __future__ import annotations

from dataclasses import dataclass

from neuroseg.errors import NeurosegError


class NetworkError(NeurosegError):
    """A peer could not be reached, or refused or failed to store or return some instances."""

    exit_code = 7


@dataclass(frozen=True)
class Outcome:
    sop_instance_uid: str
    source: str  # file name or description of the instance
    stored: bool
    detail: str  # the peer's status, or why it was not stored

    def line(self) -> str:
        return f"{'stored' if self.stored else 'NOT stored'}: {self.source} ({self.sop_instance_uid}): {self.detail}"


def check_outcomes(outcomes: list[Outcome], where: str) -> None:
    """Raise NetworkError naming the refused instances when any was not stored."""
    refused = [o for o in outcomes if not o.stored]
    if refused:
        first = refused[0]
        raise NetworkError(f"{len(refused)} of {len(outcomes)} instances not stored at {where}: "
                           f"{first.source}: {first.detail}")

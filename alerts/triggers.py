"""What an alert sets off beyond the CSU's screens, as the apps above alerts tell it.

A rule may start a PPMS scenario. The alerts app shows it — ``ppms_scenario`` on an alert
and on a rule in the API, the live push and the webhooks; the CAP message of such an
alert tells the public what to do — without knowing the PPMS: the ppms app registers
here, from the wiring (``csu/apps.py``), the ``Triggers`` that answers for it. With none
registered, no rule sets anything off.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Trigger:
    code: str  # "evacuation": an alert's and a rule's ``ppms_scenario``
    label: str
    cap_response: str  # the CAP responseType while the alert is under way
    cap_instruction: str  # the CAP instruction while it is under way
    cap_all_clear: str  # added to the instruction of its all-clear


class Triggers(Protocol):
    def choices(self) -> list[tuple[str, str]]:
        """The codes a rule may name, with their labels."""

    def of_rules(self, rule_ids: Iterable[int]) -> dict[int, Trigger]:
        """The trigger of each rule that has one."""

    def set(self, rule, code: str) -> None:
        """Make ``rule`` set off ``code`` ("" for nothing)."""

    def problem(self, rule, code: str) -> str | None:
        """Why ``rule`` (as it would be saved) may not set off ``code``, or None."""


class NoTriggers:
    def choices(self) -> list[tuple[str, str]]:
        return []

    def of_rules(self, rule_ids: Iterable[int]) -> dict[int, Trigger]:
        return {}

    def set(self, rule, code: str) -> None:
        if code:
            raise ValueError(f"no app sets off {code!r}")

    def problem(self, rule, code: str) -> str | None:
        return None


_registered: Triggers = NoTriggers()


def register(triggers: Triggers) -> None:
    global _registered
    _registered = triggers


def choices() -> list[tuple[str, str]]:
    return _registered.choices()


def of_rules(rule_ids: Iterable[int]) -> dict[int, Trigger]:
    return _registered.of_rules(rule_ids)


def of_rule(rule) -> Trigger | None:
    return _registered.of_rules([rule.pk]).get(rule.pk)


def code_of(rule) -> str | None:
    """The ``ppms_scenario`` of the JSON: the rule's trigger code, or None."""
    trigger = of_rule(rule)
    return trigger.code if trigger else None


def set_for(rule, code: str) -> None:
    _registered.set(rule, code)


def problem(rule, code: str) -> str | None:
    """Why ``rule``, as it would be saved, may not set off ``code`` ("": nothing): None if
    it may."""
    return _registered.problem(rule, code) if code else None

"""The rules that set off a PPMS scenario, as the alerts app asks (``alerts/triggers.py``).

Registered from the wiring (``csu/apps.py``). The rules' triggers are few and read for
every alert shown, pushed or put in CAP: each process keeps them (``core/cache.py``).
"""

from collections.abc import Iterable

from alerts.triggers import Trigger
from core.cache import ProcessCache

from .models import RuleTrigger, Scenario, trigger_problem

ALL_CLEAR = "La fin du PPMS reste donnée par les autorités."


def _trigger(scenario: str) -> Trigger:
    posture = Scenario(scenario)
    return Trigger(
        code=posture.value,
        label=str(posture.label),
        cap_response=posture.cap_response,
        cap_instruction=posture.cap_instruction,
        cap_all_clear=ALL_CLEAR,
    )


_by_rule: ProcessCache[None, dict[int, Trigger]] = ProcessCache(
    lambda _key: {
        rule_id: _trigger(scenario)
        for rule_id, scenario in RuleTrigger.objects.values_list("rule_id", "scenario")
    }
)


class PpmsTriggers:
    def choices(self) -> list[tuple[str, str]]:
        return list(Scenario.choices)

    def of_rules(self, rule_ids: Iterable[int]) -> dict[int, Trigger]:
        triggers = _by_rule.get(None)
        return {rule_id: triggers[rule_id] for rule_id in rule_ids if rule_id in triggers}

    def set(self, rule, code: str) -> None:
        if code:
            RuleTrigger.objects.update_or_create(rule=rule, defaults={"scenario": code})
        else:
            RuleTrigger.objects.filter(rule=rule).delete()

    def problem(self, rule, code: str) -> str | None:
        existing = RuleTrigger.objects.filter(rule_id=rule.pk).first() if rule.pk else None
        confirmations = existing.confirmations if existing else 1
        return trigger_problem(rule.duration, confirmations)


def scenario_of(rule) -> str | None:
    """The scenario ``rule``'s alerts set off, or None."""
    trigger = _by_rule.get(None).get(rule.pk)
    return trigger.code if trigger else None

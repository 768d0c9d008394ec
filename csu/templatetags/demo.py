from django import template

from csu import embedded

register = template.Library()


@register.simple_tag
def demo_simulator_running() -> bool:
    """Whether this process runs the demo's simulator (the replay button has a use)."""
    return embedded.simulator_running()

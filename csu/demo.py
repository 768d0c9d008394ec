"""The demo's admin button that plays the flood again, in the embedded runner only."""

from django.contrib import admin, messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import embedded

FLOOD = "flood"


@require_POST
def replay_flood(request):
    """Restart the embedded simulator with the flood beginning at once."""
    if embedded.replay_scenario(FLOOD) is None:
        raise Http404(_("Aucun simulateur de démonstration ne tourne dans ce processus."))
    messages.success(
        request,
        _(
            "La crue du Cher recommence : le niveau monte sur les limnimètres, les règles "
            "de crue se déclenchent dans les minutes qui viennent."
        ),
    )
    return redirect("admin:index")


replay_flood_view = admin.site.admin_view(replay_flood)

from django.shortcuts import redirect, render

from csu.roles import is_director, is_operator
from ppms.models import School
from sensors.models import Commune, Sensor


def home(request):
    """Show each user the start page of their role: operators and admins, the dashboard;
    directors, their school's PPMS page."""
    user = request.user
    if is_operator(user) or user.is_staff:
        return redirect("dashboard")
    if is_director(user) and School.objects.filter(directors=user).exists():
        return redirect("ppms-director")
    context = {
        "is_operator": is_operator(user) or user.is_staff,
        "is_director": is_director(user),
        "communes": Commune.objects.visible_to(user),
        "sensor_count": Sensor.objects.visible_to(user).count(),
        "schools": School.objects.visible_to(user).select_related("commune"),
    }
    return render(request, "home.html", context)

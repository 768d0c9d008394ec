from django.shortcuts import render

from csu.roles import is_director, is_operator
from ppms.models import School
from sensors.models import Commune, Sensor


def home(request):
    """Show each user the start page of their role."""
    user = request.user
    context = {
        "is_operator": is_operator(user) or user.is_staff,
        "is_director": is_director(user),
        "communes": Commune.objects.visible_to(user),
        "sensor_count": Sensor.objects.visible_to(user).count(),
        "schools": School.objects.visible_to(user).select_related("commune"),
    }
    return render(request, "home.html", context)

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import dashboard, health, metrics, views
from .sensor_page import sensor_detail

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("dashboard/wall/", dashboard.wall, name="dashboard-wall"),
    path("dashboard/kpis.json", dashboard.kpis_json, name="dashboard-kpis"),
    path("sensors/<slug:ref>/", sensor_detail, name="sensor-detail"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("sensors.api_urls")),
    path("api/v1/", include("alerts.api_urls")),
    path("api/v1/", include("ppms.api_urls")),
]

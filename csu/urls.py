from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.i18n import JavaScriptCatalog

from core import signin
from core.schema_view import DocsView, SchemaView
from csu.demo import replay_flood_view
from dashboard import views as dashboard
from dashboard.alert_page import alert_detail
from dashboard.sensor_page import sensor_detail
from ppms import views as ppms_views
from sensors import health, prometheus

admin.site.site_header = admin.site.site_title = _("CSU — administration")
admin.site.index_title = _("Configuration de la supervision")

urlpatterns = [
    path("", dashboard.home, name="home"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("dashboard/wall/", dashboard.wall, name="dashboard-wall"),
    path("dashboard/kpis.json", dashboard.kpis_json, name="dashboard-kpis"),
    path("sensors/<slug:ref>/", sensor_detail, name="sensor-detail"),
    path("alerts/<int:pk>/", alert_detail, name="alert-page"),
    path("ppms/", ppms_views.board, name="ppms-board"),
    path("ppms/sections/", ppms_views.board_sections, name="ppms-board-sections"),
    path("ppms/ecole/", ppms_views.director_home, name="ppms-director"),
    path("ppms/school/<str:uai>/", ppms_views.director_school, name="ppms-director-school"),
    path(
        "ppms/school/<str:uai>/state.json",
        ppms_views.director_state_json,
        name="ppms-director-state",
    ),
    path("ppms/sw.js", ppms_views.service_worker, name="ppms-sw"),
    path("ppms/manifest.webmanifest", ppms_views.manifest, name="ppms-manifest"),
    path("ppms/activations/<int:pk>/", ppms_views.activation_board, name="ppms-activation"),
    path("ppms/activations/<int:pk>/rapport/", ppms_views.report, name="ppms-report"),
    path("ppms/activations/<int:pk>/rapport.csv", ppms_views.report_csv, name="ppms-report-csv"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", prometheus.metrics, name="metrics"),
    path("accounts/login/", signin.SignInView.as_view(), name="login"),
    path("accounts/code/", signin.code_step, name="second-factor-code"),
    path("accounts/double-authentification/", signin.second_factor, name="second-factor"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    # The pages' JavaScript words (static/js/i18n.js): open, like /i18n/, it holds no data.
    path(
        "jsi18n/",
        login_not_required(JavaScriptCatalog.as_view()),
        name="javascript-catalog",
    ),
    # Before the admin's own: its sign-in would skip the second factor.
    path("admin/login/", signin.admin_sign_in, name="admin-login"),
    path("admin/demo/rejouer-la-crue/", replay_flood_view, name="demo-replay-flood"),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    # The split view serves its script as a file: the Content-Security-Policy allows no inline one.
    path("api/docs/", DocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("sensors.api_urls")),
    path("api/v1/", include("alerts.api_urls")),
    path("api/v1/", include("ppms.api_urls")),
    path("api/v1/", include("core.api_urls")),
]

# JSON under /api/, Django's pages elsewhere.
handler400 = "core.errors.bad_request"
handler403 = "core.errors.permission_denied"
handler404 = "core.errors.not_found"
handler500 = "core.errors.server_error"

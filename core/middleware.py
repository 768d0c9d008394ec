from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Require a login for every page; the API and /metrics answer 401 themselves.

    /i18n/ (the language switch) is open: it only sets the language cookie, and the login
    page offers it before anyone is signed in.
    """

    open_prefixes = ("/api/", "/healthz", "/metrics", "/static/", "/i18n/")

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith(self.open_prefixes):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)

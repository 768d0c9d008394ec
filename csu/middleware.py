from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Require a login for every page; the API and /metrics answer 401 themselves."""

    open_prefixes = ("/api/", "/healthz", "/metrics", "/static/")

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith(self.open_prefixes):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)

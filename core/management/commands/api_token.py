from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.api_tokens import token_issue


class Command(BaseCommand):
    help = (
        "Issue an API token to a user and print its secret, this once (only its hash is "
        "kept). It lasts API_TOKEN_DAYS; send it as 'Authorization: Token <secret>'."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what uses it, shown in the admin")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {username!r}")
        token, secret = token_issue(user=user, name=name)
        self.stdout.write(
            f"Token {token.prefix}… for {username}, expires {token.expires:%Y-%m-%d %H:%M %Z}. "
            "Shown once:"
        )
        self.stdout.write(secret)

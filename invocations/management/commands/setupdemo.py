import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from invocations.roles import ADMIN

DEMO_USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Create the demo login (user 'admin' with a random password, kept in "
        "FCDASH_VAR_DIR/demo-login.txt) and write its API token to "
        "FCDASH_VAR_DIR/demo-token for the demo traffic generator."
    )

    def handle(self, *args, **options):
        login_file = settings.VAR_DIR / "demo-login.txt"
        token_file = settings.VAR_DIR / "demo-token"
        User = get_user_model()

        user = User.objects.filter(username=DEMO_USERNAME).first()
        if user is None or not login_file.exists():
            password = secrets.token_urlsafe(9)
            if user is None:
                user = User.objects.create_user(DEMO_USERNAME)
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get(name=ADMIN))
            login_file.write_text(password + "\n")
        password = login_file.read_text().strip()

        token, _ = Token.objects.get_or_create(user=user)
        token_file.write_text(token.key + "\n")
        self.stdout.write(f"Sign in as {DEMO_USERNAME} with password {password}")

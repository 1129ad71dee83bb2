import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from invocations.models import Region
from invocations.roles import ADMIN

DEMO_USERNAME = "admin"
# The demo function server's concurrency quotas (see the Procfile), so
# fcdash's alerts and remediation use the same numbers.
DEMO_REGION_QUOTAS = {"cn-hangzhou": 10, "cn-shanghai": 10, "cn-beijing": 2}


class Command(BaseCommand):
    help = (
        "Create the demo login (superuser 'admin' with a random password, kept "
        "in FCDASH_VAR_DIR/demo-login.txt), write its API token to "
        "FCDASH_VAR_DIR/demo-token for the demo traffic generator, and set the "
        "demo regions' quotas."
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
            # A superuser, so the demo can also edit region quotas in /admin/.
            user.is_staff = True
            user.is_superuser = True
            user.save()
            user.groups.add(Group.objects.get(name=ADMIN))
            login_file.write_text(password + "\n")
        password = login_file.read_text().strip()

        for region, quota in DEMO_REGION_QUOTAS.items():
            Region.objects.get_or_create(name=region, defaults={"quota": quota})

        token, _ = Token.objects.get_or_create(user=user)
        token_file.write_text(token.key + "\n")
        self.stdout.write(f"Sign in as {DEMO_USERNAME} with password {password}")

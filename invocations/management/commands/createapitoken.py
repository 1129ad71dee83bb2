from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from invocations.roles import ROLES


class Command(BaseCommand):
    help = (
        "Print USERNAME's API token, creating the token if needed. A missing "
        "user is created with the role given by --role and no password."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role",
            choices=ROLES,
            default="admin",
            help="role of a user that this command creates (default: admin)",
        )

    def handle(self, *args, username, role, **options):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(username)
            user.groups.add(Group.objects.get(name=role))
            self.stderr.write(f"Created user {username!r} with role {role}.")
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)

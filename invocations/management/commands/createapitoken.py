from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from invocations.roles import ADMIN, ROLES


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
            help=f"role of a user that this command creates (default: {ADMIN}). "
            "The role of an existing user does not change.",
        )

    def handle(self, *args, username, role, **options):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            validate_username(User, username)
            role = role or ADMIN
            user = User.objects.create_user(username)
            user.groups.add(Group.objects.get(name=role))
            self.stderr.write(f"Created user {username!r} with role {role}.")
        elif role is not None:
            self.stderr.write(
                f"User {username!r} already exists, so its role stays as it is. "
                f"--role {role} applies only to users that this command creates. "
                "Change the roles of existing users in the admin."
            )
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)


def validate_username(User, username: str) -> None:
    """Raise CommandError unless `username` is valid for a new user."""
    field = User._meta.get_field(User.USERNAME_FIELD)
    try:
        field.clean(username, None)
    except ValidationError as error:
        raise CommandError(
            f"Invalid username {username!r}: {' '.join(error.messages)}"
        ) from error

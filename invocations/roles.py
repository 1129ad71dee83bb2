"""The three roles, as groups: viewer reads, operator acts, admin configures."""

from django.contrib.auth.models import Group, Permission

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)

OPERATE_PERMISSION = "invocations.operate_invocation"

VIEW_CODENAMES = [
    "view_function",
    "view_invocation",
    "view_attempt",
    "view_quotaalert",
    "view_failurepolicy",
    "view_region",
]
ROLE_CODENAMES = {
    VIEWER: VIEW_CODENAMES,
    OPERATOR: [*VIEW_CODENAMES, "operate_invocation", "change_quotaalert"],
    ADMIN: [
        *VIEW_CODENAMES,
        "operate_invocation",
        "change_quotaalert",
        "add_function",
        "change_function",
        "change_failurepolicy",
        "add_region",
        "change_region",
        "view_auditevent",
    ],
}


def create_role_groups(sender=None, **kwargs) -> None:
    """Create or update the role groups; runs after every migrate."""
    for role, codenames in ROLE_CODENAMES.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = Permission.objects.filter(
            content_type__app_label="invocations", codename__in=codenames
        )
        group.permissions.set(permissions)

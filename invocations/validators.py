"""Validators for values that users and functions send to fcdash."""

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from .policy import ErrorType

FUNCTION_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
REGION_RE = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
# FC's rule for X-Fc-Async-Task-Id.
TASK_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")

# Cloud metadata services that no function endpoint may point at. Link-local
# ranges (169.254.0.0/16 and fe80::/10) are rejected as a whole.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, Azure, GCP, OpenStack
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)
# IPv6 ranges whose last 32 bits are an IPv4 address (RFC 6052, RFC 4291).
NAT64_NETWORK = ipaddress.IPv6Network("64:ff9b::/96")
IPV4_COMPATIBLE_NETWORK = ipaddress.IPv6Network("::/96")
METADATA_HOSTNAMES = frozenset(
    {"metadata", "metadata.google.internal", "metadata.azure.internal"}
)


def validate_function_name(value: str) -> None:
    if not FUNCTION_NAME_RE.match(value):
        raise ValidationError(
            f"Invalid function name {value!r}: use 1 to 64 letters, digits, "
            "'_' and '-', starting with a letter or '_'."
        )


def validate_region(value: str) -> None:
    if not REGION_RE.match(value):
        raise ValidationError(
            f"Invalid region {value!r}: use lowercase letters, digits and '-', "
            "starting with a letter (for example cn-hangzhou)."
        )


def validate_error_type(value: str) -> None:
    if value not in {kind.value for kind in ErrorType}:
        choices = ", ".join(ErrorType)
        raise ValidationError(f"Invalid error type {value!r}: use one of {choices}.")


def validate_task_id(value: str) -> None:
    if not TASK_ID_RE.match(value):
        raise ValidationError(
            f"Invalid X-Fc-Async-Task-Id {value!r}: use 1 to 128 letters, "
            "digits, '_' and '-', starting with a letter or '_'."
        )


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address that an IPv6 address carries, if it carries one.

    Covers IPv4-mapped (::ffff:0:0/96), NAT64 (64:ff9b::/96),
    IPv4-compatible (::/96 except :: and ::1) and 6to4 (2002::/16) addresses.
    A network that routes these forms may deliver a request to the embedded
    IPv4 address.
    """
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    low_32_bits = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in NAT64_NETWORK:
        return low_32_bits
    if address in IPV4_COMPATIBLE_NETWORK and int(address) > 1:
        return low_32_bits
    return None


def is_forbidden_address(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> bool:
    """Return True for link-local and cloud metadata addresses.

    An IPv6 address that embeds an IPv4 address is judged by both.
    """
    if address.is_link_local or address in METADATA_ADDRESSES:
        return True
    if isinstance(address, ipaddress.IPv6Address):
        ipv4 = embedded_ipv4(address)
        return ipv4 is not None and is_forbidden_address(ipv4)
    return False


def parse_ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parse a URL host as an IP address, or return None for a host name.

    Besides the usual notations this reads the legacy IPv4 forms that C
    libraries still accept, such as 2852039166 or 0xA9FEA9FE for
    169.254.169.254, so they cannot hide a forbidden address.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def validate_endpoint_url(value: str) -> None:
    """Reject endpoints that are not http(s) or that name a forbidden host."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValidationError(
            f"Invalid endpoint_url {value!r}: the scheme must be http or https."
        )
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise ValidationError(f"Invalid endpoint_url {value!r}: the host is missing.")
    if host in METADATA_HOSTNAMES:
        raise ValidationError(
            f"Invalid endpoint_url {value!r}: {host} is a cloud metadata service."
        )
    address = parse_ip_address(host)
    if address is not None and is_forbidden_address(address):
        raise ValidationError(
            f"Invalid endpoint_url {value!r}: {host} is a link-local or cloud "
            "metadata address. Point the function at its own endpoint."
        )


def resolve_forbidden_address(url: str) -> str | None:
    """Resolve the URL's host and return a forbidden address it maps to, if any.

    NOTE: the HTTP client resolves the name again when it connects, so a DNS
    server that changes its answer in between is not caught here.
    """
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 0)
    except (OSError, UnicodeError):
        return None  # the invoker reports the failed lookup as ConnectionFailed
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if is_forbidden_address(address):
            return str(address)
    return None

"""Turns a store name a person typed into the DNS-safe names the cluster needs.

A store's slug is its host label (<slug>.<base domain>); its namespace and Helm
release derive from slug and id so they are unique even when a slug is reused
after deletion.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError

NAME_MIN, NAME_MAX = 3, 40
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]*[A-Za-z0-9]$")
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Hosts the platform itself may answer on; stores must not shadow them.
RESERVED_SLUGS = {"www", "api", "admin", "app", "dashboard", "static", "mail", "status"}


def slug_for(name: str) -> str:
    """Validate a store name and return its slug; raise ValidationError with a fix-it message."""
    if not isinstance(name, str):
        raise ValidationError("The store name must be text.")
    name = name.strip()
    if not name:
        raise ValidationError("Give the store a name, for example 'Corner Shop'.")
    if not name.isascii():
        raise ValidationError(
            "The store name may use only ASCII letters, digits, spaces and hyphens "
            "(it becomes part of the store's web address)."
        )
    if len(name) < NAME_MIN or len(name) > NAME_MAX:
        raise ValidationError(f"The store name must be {NAME_MIN} to {NAME_MAX} characters long (it has {len(name)}).")
    if not _NAME_RE.match(name):
        raise ValidationError(
            "The store name may use only letters, digits, spaces and hyphens, "
            "and must start and end with a letter or digit."
        )
    slug = re.sub(r"[ -]+", "-", name.lower())
    if not _DNS_LABEL_RE.match(slug):
        raise ValidationError(f"'{name}' would not make a valid web address; use letters and digits.")
    if slug in RESERVED_SLUGS:
        raise ValidationError(f"'{slug}' is reserved by the platform; choose another name.")
    return slug


def namespace_for(store_id: int, slug: str) -> str:
    """Namespace name: DNS-1123 label of at most 63 characters, unique through the id.

    The prefix (STORE_NAMESPACE_PREFIX) keeps two installations sharing a cluster apart.
    """
    return f"{settings.STORE_NAMESPACE_PREFIX}-{store_id}-{slug}"[:63].rstrip("-")


def release_for(store_id: int, slug: str) -> str:
    """Helm release name: at most 53 characters (Helm's limit)."""
    return f"{settings.STORE_NAMESPACE_PREFIX}-{store_id}-{slug}"[:53].rstrip("-")

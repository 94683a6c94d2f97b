"""Kubernetes name syntax: DNS-1123 labels and subdomains, label keys and values, printable names.

Pure; every check raises ``ValueError`` with what would be valid.
"""

from __future__ import annotations

import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1123_LABEL_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(DNS1123_LABEL_PATTERN)
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


# ---------------------------------------------------------------------------------------------
# DNS names, reserved names, labels
# ---------------------------------------------------------------------------------------------


def check_dns_label(value: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a DNS-1123 label (what Namespace names must be)."""
    if not value:
        raise ValueError("must not be empty; expected a DNS-1123 label (lower-case a-z, 0-9 and '-')")
    if len(value) > DNS1123_LABEL_MAX:
        raise ValueError(f"is too long: {len(value)} characters, a DNS-1123 label has at most {DNS1123_LABEL_MAX}")
    if not _DNS1123_LABEL.fullmatch(value):
        raise ValueError(
            "is not a DNS-1123 label: use lower-case letters a-z, digits 0-9 and '-', "
            "starting and ending with a letter or digit"
        )


def check_dns_subdomain(value: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a DNS-1123 subdomain (ServiceAccount names, label prefixes)."""
    if not value:
        raise ValueError("must not be empty; expected a DNS-1123 subdomain")
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        raise ValueError(
            f"is too long: {len(value)} characters, a DNS-1123 subdomain has at most {DNS1123_SUBDOMAIN_MAX}"
        )
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            "is not a DNS-1123 subdomain: use lower-case letters a-z, digits 0-9, '-' and '.', "
            "each part starting and ending with a letter or digit"
        )


def check_label_key(key: str) -> None:
    """Raise ``ValueError`` unless ``key`` is a syntactically valid label key (``[prefix/]name``)."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        raise ValueError("is not a valid label key: the prefix before '/' is empty")
    if prefix:
        try:
            check_dns_subdomain(prefix)
        except ValueError as exc:
            raise ValueError(f"is not a valid label key: its prefix {exc}") from None
    if not name or len(name) > DNS1123_LABEL_MAX or not _LABEL_NAME.fullmatch(name):
        raise ValueError(
            "is not a valid label key: the name must be 1-63 characters of a-z, A-Z, 0-9, '-', '_' and '.', "
            "starting and ending with a letter or digit (an optional DNS prefix goes before '/')"
        )


def check_label_value(value: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a valid label value (empty, or 1-63 label characters)."""
    if value and (len(value) > DNS1123_LABEL_MAX or not _LABEL_NAME.fullmatch(value)):
        raise ValueError(
            "is not a valid label value: use nothing or 1-63 characters of a-z, A-Z, 0-9, '-', '_' and '.', "
            "starting and ending with a letter or digit"
        )


UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
"""Control characters, Unicode line breaks, lone surrogates and non-characters: never valid in a name,
and what YAML cannot carry raw inside a quoted scalar (it reads some as line breaks)."""


def check_printable(value: str) -> None:
    """Raise ``ValueError`` if a free-form name holds control characters, line breaks or lone surrogates."""
    found = UNPRINTABLE.search(value)
    if found:
        raise ValueError(f"must not contain control characters or line breaks (found U+{ord(found.group()):04X})")

"""Names, label keys and Kubernetes value syntax: the small exact rules every other module leans on.

Everything here is pure and raises nothing but ``ValueError`` (the spec module turns those into
``FieldError``s with a dotted path). Three families live here:

* the label and annotation keys the blueprint writes, and the names it derives (``<tenant>-<ns>``,
  RoleBinding names for owners whose names are not DNS names);
* the DNS-1123 and label syntax checks, reserved namespace names;
* an exact parser and printer for Kubernetes resource quantities (``100m``, ``16Gi``, ``1e3``) and a
  parser for the short durations the spec uses for TTLs (``30m``, ``2h``, ``1d``).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal, localcontext
from typing import Literal

API_VERSION = "vcluster-mgr.dev/v1alpha1"
"""apiVersion of every document this project reads (Tenant, Policy)."""

MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "vcluster-mgr"
TENANT_LABEL = "vcluster-mgr.dev/tenant"
"""Label on every tenant object; the platform's admission policies select tenant namespaces by it."""

SYSTEM_NAMESPACE = "vcluster-mgr-system"
"""The project's own namespace; no tenant may claim it."""

PLACEMENT_CONFIGMAP = "vcm-placement"
"""Per-namespace ConfigMap holding the tenant's nodeSelector; the vcm-placement admission policy reads it."""

POD_SECURITY_PREFIX = "pod-security.kubernetes.io/"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Set (immutably) by the API server on every Namespace; NetworkPolicies select namespaces by it."""

# Label-key prefixes a spec may not set: the API server's and this project's own. A spec label on
# a Namespace such as ``pod-security.kubernetes.io/enforce: privileged`` would undo the blueprint.
_RESERVED_LABEL_DOMAINS = ("kubernetes.io", "k8s.io", "vcluster-mgr.dev")
_ALLOWED_RESERVED_PREFIXES = ("app.kubernetes.io",)
"""Recommended ``app.kubernetes.io/*`` labels stay usable, except the managed-by key."""

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


def reserved_reason(namespace: str) -> str | None:
    """Why a namespace name is reserved (``default``, ``kube-*``, the project's own), or None if it is free."""
    if namespace == "default":
        return "'default' is reserved"
    if namespace.startswith("kube-"):
        return "names starting with 'kube-' are reserved for Kubernetes"
    if namespace == SYSTEM_NAMESPACE:
        return f"'{SYSTEM_NAMESPACE}' is vcluster-mgr's own namespace"
    return None


def namespace_name(tenant: str, suffix: str) -> str:
    """The real namespace of a tenant's namespace entry: ``payments`` + ``app`` -> ``payments-app``."""
    return f"{tenant}-{suffix}"


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


def check_spec_label_key(key: str) -> None:
    """Like ``check_label_key``, and refuse the keys Kubernetes and vcluster-mgr reserve for themselves.

    Spec labels land on the tenant's Namespaces, so a key such as ``pod-security.kubernetes.io/enforce``
    or ``vcluster-mgr.dev/tenant`` would override the blueprint; ``app.kubernetes.io/*`` stays usable
    except ``app.kubernetes.io/managed-by``.
    """
    check_label_key(key)
    prefix = key.rpartition("/")[0]
    if key == MANAGED_BY_KEY:
        raise ValueError("is set by vcluster-mgr itself")
    if prefix and prefix not in _ALLOWED_RESERVED_PREFIXES:
        for domain in _RESERVED_LABEL_DOMAINS:
            if prefix == domain or prefix.endswith("." + domain):
                raise ValueError(f"is reserved: label keys under {domain!r} belong to Kubernetes and vcluster-mgr")


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


def owner_binding_name(role: str, kind: str, name: str, namespace: str | None = None) -> str:
    """The RoleBinding name for one owner: ``vcm-owner-<role>-<kind>-<hash>``.

    Owner names (``alice@example.com``, OIDC subjects) are not DNS names, so the name carries
    the first 10 hex digits of the SHA-256 of ``kind/namespace/name`` instead: stable, short,
    and distinct for every owner of a tenant in practice.
    """
    digest = hashlib.sha256(f"{kind}/{namespace or ''}/{name}".encode()).hexdigest()[:10]
    return f"vcm-owner-{role}-{kind.lower()}-{digest}"


# ---------------------------------------------------------------------------------------------
# Kubernetes resource quantities
# ---------------------------------------------------------------------------------------------

QuantityFormat = Literal["DecimalSI", "BinarySI", "DecimalExponent"]

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]{1,6}|[numkMGTPE]?)"
)
QUANTITY_PATTERN = re.sub(r"\?P<\w+>", "", _QUANTITY.pattern)
"""The quantity grammar as a portable regular expression (used in the JSON Schema)."""

QUANTITY_MAX = Decimal(2**63 - 1)
"""Largest magnitude accepted: Kubernetes stores quota and limit values as 64-bit integers."""

_NANO = Decimal("1e-9")
_PRECISION = 60  # enough digits for any value up to QUANTITY_MAX with nano resolution, with room


@dataclass(frozen=True)
class Quantity:
    """A parsed Kubernetes quantity: its exact value and the notation it was written in.

    ``str(q)`` prints the canonical form the API server would print (``1.5Gi`` -> ``1536Mi``,
    ``0.5`` -> ``500m``, ``4000`` -> ``4k``), keeping the notation family of the input.
    """

    value: Decimal
    format: QuantityFormat

    def __str__(self) -> str:
        return format_quantity(self.value, self.format)

    def split(self, parts: int, resolution: Decimal) -> Quantity:
        """This quantity divided by ``parts``, rounded down to a multiple of ``resolution``."""
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            share = (self.value / parts / resolution).to_integral_value(rounding=ROUND_DOWN) * resolution
        return Quantity(share, self.format)


def parse_quantity(raw: object) -> Quantity:
    """Parse a quantity exactly as Kubernetes does (``resource.ParseQuantity``).

    Accepts a string, an int or a float (YAML gives ``cpu: 8`` as an int). The grammar is a
    number (``5``, ``5.``, ``.5``, ``1.25``) with an optional sign and one suffix: a binary SI
    suffix (``Ki``..``Ei``), a decimal SI suffix (``n``, ``u``, ``m``, none, ``k``, ``M``, ``G``,
    ``T``, ``P``, ``E``) or a decimal exponent (``e3``, ``E-2``). Like Kubernetes, values finer than
    one nano-unit are rounded up (away from zero) to 1n. Raises ``ValueError`` for anything else,
    including magnitudes above ``QUANTITY_MAX``. Negative values parse; callers reject them.
    """
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        # ValueError, not TypeError: a wrong type in a spec is one more invalid value to report
        raise ValueError("is not a quantity: expected a string or number such as 500m, 2, 16Gi or 1e3")  # noqa: TRY004
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueError("is not a finite quantity")
        return _finish(Decimal(repr(raw)), "DecimalSI")
    if isinstance(raw, int) and abs(raw) > QUANTITY_MAX:
        raise ValueError(f"is larger than the maximum quantity {QUANTITY_MAX}")
    text = str(raw)
    match = _QUANTITY.fullmatch(text)
    if not match:
        raise ValueError(
            "is not a Kubernetes quantity: expected a number with an optional suffix "
            "(n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei) or exponent (1e3), such as 500m, 2, 16Gi"
        )
    number = Decimal(match["number"])
    if match["sign"] == "-":
        number = -number
    suffix = match["suffix"]
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        if suffix in _BINARY_SUFFIXES:
            if abs(number) > QUANTITY_MAX:
                raise ValueError(f"is larger than the maximum quantity {QUANTITY_MAX}")
            return _finish(number * (Decimal(1024) ** _BINARY_SUFFIXES[suffix]), "BinarySI")
        if suffix in _DECIMAL_SUFFIXES:
            return _finish(number.scaleb(_DECIMAL_SUFFIXES[suffix]), "DecimalSI")
        exponent = int(suffix[1:])
        if exponent > 40:  # anything non-zero beyond 1e40 is far above QUANTITY_MAX
            if number == 0:
                return Quantity(Decimal(0), "DecimalExponent")
            raise ValueError(f"is larger than the maximum quantity {QUANTITY_MAX}")
        return _finish(number.scaleb(exponent), "DecimalExponent")


def _finish(value: Decimal, fmt: QuantityFormat) -> Quantity:
    if abs(value) > QUANTITY_MAX:
        raise ValueError(f"is larger than the maximum quantity {QUANTITY_MAX}")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        value = value.quantize(_NANO, rounding=ROUND_UP)
    return Quantity(value, fmt)


def format_quantity(value: Decimal, fmt: QuantityFormat) -> str:
    """The canonical text of ``value`` in the notation family ``fmt``, as the API server prints it.

    BinarySI values print with the largest ``Ki``..``Ei`` suffix that keeps the number whole
    (``1536Mi``); values below 1024 or with a fraction fall back to DecimalSI. DecimalSI and
    DecimalExponent print the largest power-of-1000 suffix (or ``eN``) that keeps the number whole.
    """
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        if value == 0:
            return "0"
        sign = "-" if value < 0 else ""
        magnitude = abs(value)
        if fmt == "BinarySI":
            if magnitude >= 1024 and magnitude == magnitude.to_integral_value():
                whole = int(magnitude)
                power = 0
                while power < 6 and whole % 1024 == 0:
                    whole //= 1024
                    power += 1
                suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power]
                return f"{sign}{whole}{suffix}"
            fmt = "DecimalSI"
        exponent = -9
        mantissa = magnitude.scaleb(9)
        while mantissa % 1000 == 0 and (fmt == "DecimalExponent" or exponent < 18):
            mantissa /= 1000
            exponent += 3
        digits = str(int(mantissa))
        if fmt == "DecimalExponent":
            return f"{sign}{digits}" + (f"e{exponent}" if exponent else "")
        suffix = {v: k for k, v in _DECIMAL_SUFFIXES.items()}[exponent]
        return f"{sign}{digits}{suffix}"


# ---------------------------------------------------------------------------------------------
# Durations (TTLs)
# ---------------------------------------------------------------------------------------------

_DURATION = re.compile(
    r"(?:(?P<w>[0-9]{1,6})w)?(?:(?P<d>[0-9]{1,6})d)?(?:(?P<h>[0-9]{1,7})h)?(?:(?P<m>[0-9]{1,9})m)?(?:(?P<s>[0-9]{1,10})s)?"
)
DURATION_PATTERN = re.sub(r"\?P<\w+>", "", _DURATION.pattern)
"""The duration grammar as a portable regular expression (used in the JSON Schema)."""
_DURATION_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as ``30m``, ``2h``, ``1d``, ``1w`` or ``1h30m`` into a positive timedelta.

    Units, largest first, each at most once: w (weeks), d (days), h (hours), m (minutes), s (seconds).
    Raises ``ValueError`` for anything else, for zero and for durations too long to represent.
    """
    match = _DURATION.fullmatch(text) if text else None
    if not match:
        raise ValueError(
            "is not a duration: expected a number and a unit, such as 30m, 2h, 1d or 1h30m (units w, d, h, m, s)"
        )
    parts = {_DURATION_UNITS[k]: int(v) for k, v in match.groupdict().items() if v}
    try:
        duration = timedelta(**parts)
    except OverflowError:
        raise ValueError("is too long a duration") from None
    if duration <= timedelta(0):
        raise ValueError("must be longer than zero")
    return duration


def format_duration(duration: timedelta) -> str:
    """The shortest text ``parse_duration`` reads back as ``duration`` (whole seconds): ``90m`` -> ``1h30m``."""
    seconds = int(duration.total_seconds())
    out = ""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"


def go_duration(duration: timedelta) -> str:
    """``duration`` in Go's ``time.ParseDuration`` syntax (hours, minutes, seconds only): ``1d`` -> ``24h``.

    Tools written in Go (the vcluster chart's ``sleep.auto.afterInactivity``) know no ``d`` or ``w`` unit.
    """
    seconds = int(duration.total_seconds())
    out = ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"


# ---------------------------------------------------------------------------------------------
# Virtual control planes (the vcluster Helm chart)
# ---------------------------------------------------------------------------------------------

CONTROL_PLANE_CHART = "vcluster"
"""Name of the official vcluster Helm chart in its repository."""

CONTROL_PLANE_CHART_VERSION = "0.35.3"
"""The chart version vcluster-mgr generates values for (and tests them against)."""

CONTROL_PLANE_CHART_REPOSITORY = "https://charts.loft.sh"
"""The public Helm repository of the vcluster chart; the default chart source."""

KUBERNETES_VERSION_PATTERN = r"v?(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})"
_KUBERNETES_VERSION = re.compile(KUBERNETES_VERSION_PATTERN)

CHART_VERSION_PATTERN = (
    r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})(-[0-9A-Za-z][-0-9A-Za-z.]{0,63})?"
)
_CHART_VERSION = re.compile(CHART_VERSION_PATTERN)


def check_kubernetes_version(value: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a full Kubernetes release such as ``1.33.4`` or ``v1.33.4``.

    The chart uses it as the tag of the ``ghcr.io/loft-sh/kubernetes`` image, which is published per
    patch release (``v1.33.4``), so a minor version alone (``1.33``) names no image.
    """
    if not _KUBERNETES_VERSION.fullmatch(value):
        raise ValueError(
            "is not a Kubernetes release: expected MAJOR.MINOR.PATCH such as 1.33.4 or v1.33.4 "
            "(it becomes the image tag ghcr.io/loft-sh/kubernetes:v1.33.4, published per patch release)"
        )


def kubernetes_image_tag(version: str) -> str:
    """The image tag of a checked Kubernetes release: ``1.33.4`` -> ``v1.33.4``."""
    return version if version.startswith("v") else f"v{version}"


def check_chart_version(value: str) -> None:
    """Raise ``ValueError`` unless ``value`` is an exact semantic version such as ``0.35.3`` (no ranges)."""
    if not _CHART_VERSION.fullmatch(value):
        raise ValueError(
            "is not an exact chart version: expected MAJOR.MINOR.PATCH with an optional -prerelease, "
            "such as 0.35.3 (ranges and a leading 'v' are not allowed)"
        )


def control_plane_release(tenant: str) -> str:
    """Helm release name of a tenant's virtual control plane: the tenant's name (``payments``).

    The chart names the StatefulSet and Service after it, and the kubeconfig Secret ``vc-<release>``.
    """
    return tenant


def control_plane_kubeconfig_secret(release: str) -> str:
    """The Secret the vcluster control plane writes its admin kubeconfig to: ``vc-<release>``."""
    return f"vc-{release}"


# ---------------------------------------------------------------------------------------------
# Ephemeral tenants: expiry and generated names
# ---------------------------------------------------------------------------------------------

EXPIRES_AT_ANNOTATION = "vcluster-mgr.dev/expires-at"
"""Annotation on an expiring tenant's objects: when it expires, RFC 3339 in UTC (``2025-01-02T03:04:05Z``)."""

EXPIRES_AT_LABEL = "vcluster-mgr.dev/expires-at"
"""Label with the same meaning, so expiring tenants can be listed by selector. Label values allow no ':',
so its value is the compact ISO 8601 form ``20250102T030405Z`` (still UTC, to the second)."""

NAME_PREFIX_MAX = 30
"""Longest prefix of a generated tenant name; leaves room for the suffix and the namespace entries."""

NAME_SUFFIX_LENGTH = 6
"""Random characters appended to a prefix: 36**6, about 2.2e9 names per prefix."""

_NAME_PREFIX = re.compile(r"[a-z]([-a-z0-9]*)?")


def check_name_prefix(prefix: str) -> None:
    """Raise ``ValueError`` unless ``prefix`` can start a generated tenant name (``ci-``, ``pr-42-``)."""
    if not prefix or len(prefix) > NAME_PREFIX_MAX or not _NAME_PREFIX.fullmatch(prefix):
        raise ValueError(
            f"is not a name prefix: use 1-{NAME_PREFIX_MAX} characters of a-z, 0-9 and '-', "
            "starting with a letter, such as ci-"
        )
    reason = reserved_reason(prefix + "x")
    if reason:
        raise ValueError(f"makes reserved names: {reason}")

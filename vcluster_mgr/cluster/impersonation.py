"""Requests sent as someone else: ``Impersonate-User`` / ``Impersonate-Group`` on every request of a client.

The kubernetes client keeps default headers in a plain dict, which cannot repeat ``Impersonate-Group`` (the
API server reads one group per header), so the headers are added on the REST client's urllib3 pool instead,
as urllib3 allows.
"""

from __future__ import annotations

from typing import Any

import urllib3


class Impersonating:
    """Wraps a urllib3 pool manager so every request carries the impersonation headers."""

    def __init__(self, inner: Any, user: str, groups: tuple[str, ...]) -> None:
        self._inner = inner
        self._user = user
        self._groups = groups

    def request(self, method: str, url: str, *args: Any, headers: Any = None, **kwargs: Any) -> Any:
        merged = urllib3.HTTPHeaderDict(headers or {})
        merged["Impersonate-User"] = self._user
        for group in self._groups:
            merged.add("Impersonate-Group", group)
        return self._inner.request(method, url, *args, headers=merged, **kwargs)

    def again(self, inner: Any) -> Impersonating:
        """The same identity on another pool."""
        return Impersonating(inner, self._user, self._groups)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

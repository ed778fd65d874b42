"""CleverTap's API hosts by region (FACTS.md: "CleverTap Upload API")."""

from __future__ import annotations

from ctwa.infra.errors import InputError

REGION_HOSTS: dict[str, str] = {
    "in1": "in1.api.clevertap.com",
    "sg1": "sg1.api.clevertap.com",
    "us1": "us1.api.clevertap.com",
    "aps3": "aps3.api.clevertap.com",
    "mec1": "mec1.api.clevertap.com",
    "eu": "api.clevertap.com",
}


def api_base_url(region: str | None, base_url: str | None = None) -> str:
    """The API base URL: an explicit base URL wins (proxies, tests), else the region's host."""
    if base_url:
        return base_url.rstrip("/")
    key = (region or "eu").lower()
    if key == "eu1":  # CleverTap's Node SDK spells Europe this way
        key = "eu"
    if key not in REGION_HOSTS:
        known = ", ".join(REGION_HOSTS)
        raise InputError(f"unknown CleverTap region {region!r}", hint=f"use one of {known}")
    return f"https://{REGION_HOSTS[key]}"

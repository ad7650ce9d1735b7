"""The provider list and stats are the core's, unchanged by the binding:
``polyrelay.providers()`` and ``Client.providers()`` have one schema, agree
with each other and with the client's chains, and stats are keyed by id as
in the C ABI."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

import polyrelay
from polyrelay.testing import Emulator

#: The catalog schema of the core (`polyrelay::CatalogEntry`).
FIELDS = {
    "id",
    "name",
    "capabilities",
    "auth",
    "key_env",
    "key_in",
    "key_set",
    "enabled",
    "chains",
    "docs_url",
    "terms",
    "commercial_use",
    "default_rate_limit",
    "default_daily_quota",
    "default_monthly_quota",
}


def by_id(listing: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    return {p["id"]: p for p in listing}


def test_the_module_listing_is_a_default_clients_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINGECKO_API_KEY", "CG-catalog-secret")
    module = polyrelay.providers()
    with polyrelay.Client() as client:
        listing = client.providers()
    # Two paths through the core (the built-in catalog, a client's catalog)
    # and the binding: one schema, the same entries.
    assert module == listing
    assert all(set(entry) == FIELDS for entry in module)
    coingecko = by_id(module)["coingecko"]
    assert coingecko["key_set"] is True
    assert coingecko["auth"] == "optional_key"
    assert coingecko["key_env"] == "COINGECKO_API_KEY"
    assert coingecko["key_in"] == "header"
    assert "CG-catalog-secret" not in json.dumps(module)
    assert by_id(module)["open-meteo"]["auth"] == "keyless"
    assert by_id(module)["open-meteo"]["key_env"] is None


def test_a_clients_listing_follows_its_configuration_and_its_chains(emu: Emulator) -> None:
    config = {
        "capabilities": {"weather.current": {"chain": ["wttr-in", "open-meteo", "met-norway"]}},
        "providers": {"met-norway": {"enabled": False}},
    }
    with polyrelay.Client(config, api_keys={"openai": "sk-catalog-secret"}) as client:
        listing = by_id(client.providers())
        chains = {c["name"]: client.chain(c["name"]) for c in polyrelay.capabilities()}
    assert listing["met-norway"]["enabled"] is False
    assert listing["met-norway"]["chains"] == {}
    assert listing["wttr-in"]["chains"]["weather.current"] == 0
    assert listing["open-meteo"]["chains"]["weather.current"] == 1
    assert listing["openai"]["key_set"] is True
    assert "sk-catalog-secret" not in json.dumps(list(listing.values()))
    # Positions read back give the chains the engine runs.
    for capability, chain in chains.items():
        members = sorted(
            (p["chains"][capability], p["id"]) for p in listing.values() if capability in p["chains"]
        )
        assert [pid for _, pid in members] == chain, capability


def test_stats_are_keyed_by_provider_id(client: polyrelay.Client, emu: Emulator) -> None:
    client.weather.current(lat=52.52, lon=13.41)
    stats = client.stats()
    assert set(stats) == {p["id"] for p in client.providers() if p["enabled"]}
    entry = stats["open-meteo"]
    assert "provider" not in entry
    assert {"key_set", "benched_for", "requests", "outcomes", "breakers", "quota"} <= set(entry)
    assert entry["requests"] == 1

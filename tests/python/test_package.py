"""Packaging: the installed package, its stubs and its types."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import polyrelay
from polyrelay import _native


def test_tests_run_against_the_installed_package_not_the_source_tree() -> None:
    installed = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    location = Path(polyrelay.__file__).resolve().parent
    assert location.parent in installed, location
    assert Path(_native.__file__).resolve().parent == location


def test_the_wheel_ships_py_typed_and_stubs_and_an_abi3_extension() -> None:
    package = Path(polyrelay.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "_native.pyi").is_file()
    assert Path(_native.__file__).name.endswith(".abi3.so")


def test_version_matches_the_distribution() -> None:
    from importlib.metadata import version

    assert polyrelay.__version__ == version("polyrelay")


def test_stubs_match_the_native_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "polyrelay._native"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_package_type_checks_strictly(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import polyrelay\n"
        "async def main() -> float:\n"
        "    with polyrelay.Client() as client:\n"
        "        r: polyrelay.Result = client.weather.current(lat=1.0, lon=2.0)\n"
        "    async with polyrelay.AsyncClient() as aclient:\n"
        "        a: polyrelay.Result = await aclient.finance.fx_rates(base='EUR')\n"
        "        b: polyrelay.Result = await aclient.call('crypto.price', assets='BTC')\n"
        "        many: list[polyrelay.Result] = await aclient.batch('crypto.price', [None])\n"
        "        some: list[polyrelay.Result | polyrelay.Error] = await aclient.batch(\n"
        "            'crypto.price', [{'assets': 'BTC'}], return_exceptions=True)\n"
        "    with polyrelay.Client() as client:\n"
        "        rs: list[polyrelay.Result] = client.batch('weather.current', [{'city': 'Rome'}])\n"
        "        h: dict[str, object] = client.health()\n"
        "    return r.elapsed + a.elapsed + b.elapsed + len(many + some + rs + [h])\n"
    )
    for target in (["-p", "polyrelay"], [str(sample)]):
        done = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *target],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_core_capability_has_a_typed_helper_on_both_clients(emu: object) -> None:
    names = [c["name"] for c in polyrelay.capabilities()]
    assert {"weather.current", "weather.forecast", "finance.fx_rates", "crypto.price"} <= set(names)
    with polyrelay.Client() as sync_client:
        async_client = polyrelay.AsyncClient()
        for name in names:
            family, method = name.split(".")
            for client in (sync_client, async_client):
                helper = getattr(getattr(client, family), method)
                assert callable(helper), name
        async_client.close()


def test_module_level_listings_are_plain_data() -> None:
    capabilities = polyrelay.capabilities()
    assert all(isinstance(c["ttl"], float) for c in capabilities)
    providers = polyrelay.providers()
    ids = [p["id"] for p in providers]
    assert "open-meteo" in ids and "coingecko" in ids
    coingecko = next(p for p in providers if p["id"] == "coingecko")
    assert coingecko["key_env"] == "COINGECKO_API_KEY"

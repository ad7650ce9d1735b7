"""Typed helpers per capability family: ``client.weather.current(...)``.

Each family is written once and serves both clients: on :class:`Client` a
helper returns the :class:`~polyrelay.Result`, on :class:`AsyncClient` an
awaitable of it. Parameters left as ``None`` are not sent.

Adding a family as the core grows: write a class here with one method per
capability (named after the part after the dot, parameters as the core
validates them) and give both clients an attribute for it (``_client.py``).
Until then the capability is reachable through ``call()``; the test suite
fails while a core capability has no helper.
"""

from __future__ import annotations

import datetime
from typing import Callable, Generic, Optional, Sequence, TypeVar, Union

R = TypeVar("R")

#: One string, a comma-separated string, or a sequence of strings.
Names = Union[str, Sequence[str]]


class Family(Generic[R]):
    """Base of the helpers of one capability family."""

    def __init__(self, call: Callable[..., R]) -> None:
        self._call = call


class Weather(Family[R]):
    """``weather.*``: current conditions and daily forecasts.

    A place is ``lat`` + ``lon`` (degrees), or a ``city`` name for the
    providers that can resolve one.
    """

    def current(
        self,
        *,
        lat: Optional[float] = None,
        lon: Optional[float] = None,
        city: Optional[str] = None,
    ) -> R:
        """Current weather (``weather.current``)."""
        return self._call("weather.current", lat=lat, lon=lon, city=city)

    def forecast(
        self,
        *,
        lat: Optional[float] = None,
        lon: Optional[float] = None,
        city: Optional[str] = None,
        days: Optional[int] = None,
    ) -> R:
        """Daily forecast for ``days`` days (``weather.forecast``)."""
        return self._call("weather.forecast", lat=lat, lon=lon, city=city, days=days)


class Finance(Family[R]):
    """``finance.*``: foreign exchange."""

    def fx_rates(
        self,
        *,
        base: Optional[str] = None,
        symbols: Optional[Names] = None,
        date: Union[str, datetime.date, None] = None,
    ) -> R:
        """Exchange rates from ``base`` (default USD) to ``symbols``, on
        ``date`` (default latest) (``finance.fx_rates``)."""
        return self._call("finance.fx_rates", base=base, symbols=symbols, date=date)


class Crypto(Family[R]):
    """``crypto.*``: crypto-asset prices."""

    def price(self, *, assets: Names, vs_currencies: Optional[Names] = None) -> R:
        """Prices of ``assets`` (symbols or names) in ``vs_currencies``
        (default USD) (``crypto.price``)."""
        return self._call("crypto.price", assets=assets, vs_currencies=vs_currencies)


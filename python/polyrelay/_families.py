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
from typing import Callable, Generic, Mapping, Optional, Sequence, TypeVar, Union

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
    """``finance.*``: foreign exchange and stock quotes."""

    def quote(self, *, symbol: str) -> R:
        """Latest quote of a stock ``symbol`` (``finance.quote``)."""
        return self._call("finance.quote", symbol=symbol)

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



#: A chat message: ``{"role": "system" | "user" | "assistant", "content": str}``.
Message = Mapping[str, str]


class Llm(Family[R]):
    """``llm.*``: chat completions and embeddings."""

    def chat(
        self,
        *,
        messages: Sequence[Message],
        model: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
    ) -> R:
        """A chat completion for ``messages`` (``llm.chat``)."""
        return self._call(
            "llm.chat",
            messages=[dict(m) for m in messages],
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
        )

    def embeddings(
        self,
        *,
        inputs: Sequence[str],
        model: Optional[str] = None,
        purpose: Optional[str] = None,
    ) -> R:
        """Embedding vectors of ``inputs`` (``llm.embeddings``); ``purpose``
        is ``"document"`` or ``"query"``."""
        return self._call("llm.embeddings", inputs=list(inputs), model=model, purpose=purpose)


class Geo(Family[R]):
    """``geo.*``: place search."""

    def geocode(
        self,
        *,
        query: str,
        limit: Optional[int] = None,
        language: Optional[str] = None,
        country_code: Optional[str] = None,
    ) -> R:
        """Places matching ``query`` (``geo.geocode``)."""
        return self._call(
            "geo.geocode", query=query, limit=limit, language=language, country_code=country_code
        )


class TextSearch(Family[R]):
    """Base of families whose one capability is a text search."""

    capability: str = ""

    def search(
        self, *, query: str, language: Optional[str] = None, limit: Optional[int] = None
    ) -> R:
        """Results for ``query``."""
        return self._call(self.capability, query=query, language=language, limit=limit)


class News(TextSearch[R]):
    """``news.search``: news articles."""

    capability = "news.search"


class Web(TextSearch[R]):
    """``web.search``: web and encyclopedic results."""

    capability = "web.search"


class Translate(Family[R]):
    """``translate.*``: machine translation."""

    def text(
        self, *, text: Names, target_lang: str, source_lang: Optional[str] = None
    ) -> R:
        """``text`` (one string or several) translated into ``target_lang``
        (``translate.text``)."""
        texts = text if isinstance(text, str) else list(text)
        return self._call(
            "translate.text", text=texts, target_lang=target_lang, source_lang=source_lang
        )


class Dictionary(Family[R]):
    """``dictionary.*``: word definitions."""

    def define(self, *, word: str, language: Optional[str] = None) -> R:
        """Definitions of ``word`` (``dictionary.define``)."""
        return self._call("dictionary.define", word=word, language=language)


class Medical(Family[R]):
    """``medical.*``: drug labels, literature and clinical trials."""

    def drug_label(self, *, name: str, limit: Optional[int] = None) -> R:
        """Labels of the drug ``name`` (``medical.drug_label``)."""
        return self._call("medical.drug_label", name=name, limit=limit)

    def literature_search(self, *, query: str, limit: Optional[int] = None) -> R:
        """Papers matching ``query`` (``medical.literature_search``)."""
        return self._call("medical.literature_search", query=query, limit=limit)

    def clinical_trials(
        self,
        *,
        query: Optional[str] = None,
        condition: Optional[str] = None,
        status: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> R:
        """Trials by ``query`` and/or ``condition`` (``medical.clinical_trials``)."""
        return self._call(
            "medical.clinical_trials", query=query, condition=condition, status=status, limit=limit
        )


class TitleSearch(Family[R]):
    """Base of film and series search."""

    def _titles(
        self,
        capability: str,
        query: Optional[str],
        imdb_id: Optional[str],
        year: Optional[int],
        limit: Optional[int],
    ) -> R:
        return self._call(capability, query=query, imdb_id=imdb_id, year=year, limit=limit)


class Entertainment(TitleSearch[R]):
    """``entertainment.*``: films."""

    def movie_search(
        self,
        *,
        query: Optional[str] = None,
        imdb_id: Optional[str] = None,
        year: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> R:
        """Films by title or IMDb id (``entertainment.movie_search``)."""
        return self._titles("entertainment.movie_search", query, imdb_id, year, limit)


class Tv(TitleSearch[R]):
    """``tv.*``: series."""

    def show_search(
        self,
        *,
        query: Optional[str] = None,
        imdb_id: Optional[str] = None,
        year: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> R:
        """Series by title or IMDb id (``tv.show_search``)."""
        return self._titles("tv.show_search", query, imdb_id, year, limit)


class Books(Family[R]):
    """``books.*``: book search."""

    def search(self, *, query: str, limit: Optional[int] = None) -> R:
        """Books matching ``query`` (``books.search``)."""
        return self._call("books.search", query=query, limit=limit)


class Music(Family[R]):
    """``music.*``: music search."""

    def search(self, *, query: str, type: Optional[str] = None, limit: Optional[int] = None) -> R:
        """Tracks, albums or artists (``type``) matching ``query`` (``music.search``)."""
        return self._call("music.search", query=query, type=type, limit=limit)


class Video(Family[R]):
    """``video.*``: video search."""

    def search(self, *, query: str, limit: Optional[int] = None) -> R:
        """Videos matching ``query`` (``video.search``)."""
        return self._call("video.search", query=query, limit=limit)

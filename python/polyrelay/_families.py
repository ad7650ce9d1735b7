"""Typed helpers per capability family: ``client.weather.current(...)``.

Each family is written once and serves both clients: on :class:`Client` a
helper returns the :class:`~polyrelay.Result`, on :class:`AsyncClient` an
awaitable of it. Parameters left as ``None`` are not sent; defaults are the
core's.

Every helper states its capability's parameters as the core declares them
(:func:`polyrelay.parameter_schema`): the same names, types, required
parameters and defaults. ``tests/python/test_parameter_schema.py`` checks
each one against the core's schema, and forwards a call through each to
check that every parameter reaches the core.

Adding a family as the core grows: write a class here with one method per
capability (named after the part after the dot, parameters as the core's
schema declares them) and give both clients an attribute for it
(``_client.py``). Until then the capability is reachable through ``call()``;
the test suite fails while a core capability has no helper.
"""

from __future__ import annotations

import datetime
from typing import (
    Any,
    Callable,
    Dict,
    Generic,
    Literal,
    Mapping,
    Optional,
    Sequence,
    TypeVar,
    Union,
)

R = TypeVar("R")
#: What a client's streamed call returns: a stream read with ``for`` on
#: :class:`Client`, with ``async for`` on :class:`AsyncClient`.
S = TypeVar("S")

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
        days: int = 3,
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
        base: str = "EUR",
        symbols: Optional[Names] = None,
        date: Union[str, datetime.date] = "latest",
    ) -> R:
        """Exchange rates from ``base`` to ``symbols`` (every currency the
        provider has when left out), on ``date`` (``finance.fx_rates``)."""
        return self._call("finance.fx_rates", base=base, symbols=symbols, date=date)


class Crypto(Family[R]):
    """``crypto.*``: crypto-asset prices."""

    def price(self, *, assets: Names, vs_currencies: Names = ("USD",)) -> R:
        """Prices of ``assets`` (symbols or names) in ``vs_currencies``
        (``crypto.price``)."""
        return self._call("crypto.price", assets=assets, vs_currencies=vs_currencies)



#: A chat message: ``{"role": "system" | "user" | "assistant" | "tool",
#: "content": str}``, an assistant's with ``tool_calls``, a tool result's
#: with ``tool_call_id``.
Message = Mapping[str, Any]

#: A tool the model may call: OpenAI's ``{"type": "function", "function":
#: {"name", "description", "parameters"}}`` or ``{"name", "description",
#: "parameters"}``.
Tool = Mapping[str, Any]

#: ``"auto"``, ``"none"``, ``"required"``, or the one tool to call
#: (``{"name": ...}`` or OpenAI's ``{"type": "function", "function": {"name": ...}}``).
ToolChoice = Union[str, Mapping[str, Any]]

#: The form of a chat answer: OpenAI's ``{"type": "json_object"}`` or
#: ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``,
#: or a pydantic model class (its ``model_json_schema()`` is sent).
ResponseFormat = Union[Mapping[str, Any], type]


def _response_format(value: Optional[ResponseFormat]) -> Optional[Dict[str, Any]]:
    """``response_format`` as the core reads it. A pydantic model class
    becomes a ``json_schema`` format of its JSON Schema, named after the
    class; pydantic is never imported here, the class is asked duck-typed,
    so it stays an optional dependency."""
    if value is None:
        return None
    if isinstance(value, type):
        schema_of = getattr(value, "model_json_schema", None)
        if schema_of is None:
            raise TypeError(
                "response_format must be a mapping or a pydantic model class, "
                f"got the class {value.__name__}"
            )
        return {
            "type": "json_schema",
            "json_schema": {"name": value.__name__[:64], "schema": schema_of()},
        }
    return dict(value)


class Llm(Family[R], Generic[R, S]):
    """``llm.*``: chat completions (whole or streamed) and embeddings."""

    def __init__(self, call: Callable[..., R], stream: Optional[Callable[..., S]] = None) -> None:
        super().__init__(call)
        self._stream = stream

    def chat(
        self,
        *,
        messages: Sequence[Message],
        model: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        stream: bool = False,
        tools: Optional[Sequence[Tool]] = None,
        tool_choice: Optional[ToolChoice] = None,
        response_format: Optional[ResponseFormat] = None,
        tag: Optional[str] = None,
    ) -> R:
        """A chat completion for ``messages`` (``llm.chat``), whole;
        ``stream`` must stay ``False``: :meth:`stream` streams it. With
        ``tools``, the answer's ``tool_calls`` name the calls the model
        wants; send their results back as ``tool`` messages.

        With ``response_format`` (``{"type": "json_object"}``, a
        ``json_schema`` format, or a pydantic model class), the answer is
        checked against it (one that does not hold falls over to the next
        provider) and parsed: ``result.parsed`` is the value as plain data,
        a dict even for a pydantic model (``Model.model_validate(result.parsed)``
        makes the model).

        ``tag`` names the caller for budgets (``[budgets.NAME]`` with
        ``tags``): a call their estimate does not fit in is not sent, and
        one refused by every provider raises
        :class:`~polyrelay.QuotaExhaustedError`."""
        return self._call(
            "llm.chat",
            messages=[dict(m) for m in messages],
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            stream=stream,
            tools=None if tools is None else [dict(t) for t in tools],
            tool_choice=tool_choice,
            response_format=_response_format(response_format),
            tag=tag,
        )

    def stream(
        self,
        *,
        messages: Sequence[Message],
        model: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        tools: Optional[Sequence[Tool]] = None,
        tool_choice: Optional[ToolChoice] = None,
        response_format: Optional[ResponseFormat] = None,
        tag: Optional[str] = None,
    ) -> S:
        """A chat completion for ``messages`` (``llm.chat``), streamed: its
        chunks as the provider writes them (``chunk.text``), then the whole
        answer as ``stream.result``. Parameters are checked now (raising
        :class:`~polyrelay.InvalidRequestError`); the request is sent when
        the first chunk is read. A ``response_format`` is checked at the
        end: an answer that does not hold ends the stream with
        :class:`~polyrelay.StreamInterruptedError` (or, with ``mid_stream =
        "continue"``, is continued by the next provider and checked again).

        >>> for chunk in client.llm.stream(messages=[{"role": "user", "content": "Hi"}]):
        ...     print(chunk.text, end="", flush=True)       # doctest: +SKIP

        On :class:`~polyrelay.AsyncClient`, read it with ``async for``
        (awaiting it first is optional). Ctrl-C and a cancelled task close
        the upstream request at once; after a ``break``, ``close()`` does,
        as do the end of a ``with`` block around the stream and the stream
        being collected.
        """
        if self._stream is None:
            raise TypeError("this family was built without a way to stream")
        return self._stream(
            "llm.chat",
            messages=[dict(m) for m in messages],
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            tools=None if tools is None else [dict(t) for t in tools],
            tool_choice=tool_choice,
            response_format=_response_format(response_format),
            tag=tag,
        )

    def embeddings(
        self,
        *,
        inputs: Names,
        model: Optional[str] = None,
        purpose: Literal["document", "query"] = "document",
        space: Optional[str] = None,
        tag: Optional[str] = None,
    ) -> R:
        """Embedding vectors of ``inputs``, one text or several
        (``llm.embeddings``). Every result names its vector ``space``
        (``provider/model``); pass it back as ``space`` to pin an index's
        later calls to that provider and model, never another. ``tag``
        names the caller for budgets, as in :meth:`chat`."""
        texts = inputs if isinstance(inputs, str) else list(inputs)
        return self._call(
            "llm.embeddings",
            inputs=texts,
            model=model,
            purpose=purpose,
            space=space,
            tag=tag,
        )


class Geo(Family[R]):
    """``geo.*``: place search."""

    def geocode(
        self,
        *,
        query: str,
        limit: int = 5,
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

    def search(self, *, query: str, language: Optional[str] = None, limit: int = 10) -> R:
        """Results for ``query``."""
        return self._call(self.capability, query=query, language=language, limit=limit)


class News(TextSearch[R]):
    """``news.search``: news articles; ``news.meta``: every news engine at
    once, merged."""

    capability = "news.search"

    def meta(
        self,
        *,
        query: str,
        language: Optional[str] = None,
        limit: int = 10,
        engines: Optional[Names] = None,
    ) -> R:
        """Asks every available news engine (or those in ``engines``) at
        once and merges their articles (``news.meta``), as
        :meth:`Search.meta` merges web results: each article lists the
        ``engines`` that found it, its ``score`` the fusion's."""
        return self._call(
            "news.meta", query=query, language=language, limit=limit, engines=engines
        )


class Web(TextSearch[R]):
    """``web.search``: web and encyclopedic results."""

    capability = "web.search"


class Search(Family[R]):
    """``search.*``: every ``web.search`` engine at once, merged."""

    def meta(
        self,
        *,
        query: str,
        language: Optional[str] = None,
        limit: int = 10,
        engines: Optional[Names] = None,
    ) -> R:
        """Asks every available web search engine (or those in ``engines``)
        at once and merges their results (``search.meta``): one result per
        page, listing the ``engines`` that found it, ranked by
        reciprocal-rank fusion; partial when some engines fail (``missing``
        names them, the trail says why)."""
        return self._call(
            "search.meta", query=query, language=language, limit=limit, engines=engines
        )


class Translate(Family[R]):
    """``translate.*``: machine translation."""

    def text(self, *, text: Names, target_lang: str, source_lang: str = "auto") -> R:
        """``text`` (one string or several) translated into ``target_lang``
        (``translate.text``)."""
        texts = text if isinstance(text, str) else list(text)
        return self._call(
            "translate.text", text=texts, target_lang=target_lang, source_lang=source_lang
        )


class Dictionary(Family[R]):
    """``dictionary.*``: word definitions."""

    def define(self, *, word: str, language: str = "en") -> R:
        """Definitions of ``word`` (``dictionary.define``)."""
        return self._call("dictionary.define", word=word, language=language)


#: Overall status of a clinical trial (case, spaces and dashes do not matter
#: to the core).
TrialStatus = Literal[
    "recruiting",
    "not_yet_recruiting",
    "active_not_recruiting",
    "enrolling_by_invitation",
    "completed",
    "suspended",
    "terminated",
    "withdrawn",
    "unknown",
]


class Medical(Family[R]):
    """``medical.*``: drug labels, literature and clinical trials."""

    def drug_label(self, *, name: str, limit: int = 5) -> R:
        """Labels of the drug ``name`` (``medical.drug_label``)."""
        return self._call("medical.drug_label", name=name, limit=limit)

    def literature_search(self, *, query: str, limit: int = 10) -> R:
        """Papers matching ``query`` (``medical.literature_search``)."""
        return self._call("medical.literature_search", query=query, limit=limit)

    def clinical_trials(
        self,
        *,
        query: Optional[str] = None,
        condition: Optional[str] = None,
        status: Optional[TrialStatus] = None,
        limit: int = 10,
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
        limit: int,
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
        limit: int = 10,
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
        limit: int = 10,
    ) -> R:
        """Series by title or IMDb id (``tv.show_search``)."""
        return self._titles("tv.show_search", query, imdb_id, year, limit)


class Books(Family[R]):
    """``books.*``: book search."""

    def search(self, *, query: str, limit: int = 10) -> R:
        """Books matching ``query`` (``books.search``)."""
        return self._call("books.search", query=query, limit=limit)


class Music(Family[R]):
    """``music.*``: music search."""

    def search(
        self,
        *,
        query: str,
        type: Literal["track", "album", "artist"] = "track",
        limit: int = 10,
    ) -> R:
        """Tracks, albums or artists (``type``) matching ``query`` (``music.search``)."""
        return self._call("music.search", query=query, type=type, limit=limit)


class Video(Family[R]):
    """``video.*``: video search, one video's details and its transcript.

    A video is ``id``: its provider's id (``x7tgad0``, ``S9HdPi9Ikhk``, an
    Internet Archive identifier) or the URL of its YouTube, Dailymotion or
    Internet Archive page, which asks only that site's provider.
    """

    def search(self, *, query: str, limit: int = 10) -> R:
        """Videos matching ``query`` (``video.search``)."""
        return self._call("video.search", query=query, limit=limit)

    def details(self, *, id: str) -> R:
        """Title, duration, channel, publication date and thumbnails of
        one video (``video.details``)."""
        return self._call("video.details", id=id)

    def transcript(self, *, id: str, language: Optional[str] = None) -> R:
        """A video's captions as timed segments and full text, in
        ``language`` when a track has it, else the first track
        (``video.transcript``)."""
        return self._call("video.transcript", id=id, language=language)

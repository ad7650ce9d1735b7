"""The sync :class:`Client` and the asyncio :class:`AsyncClient`.

Both are thin wrappers of one native client; everything a call does
(cache, fallback chain, quotas, rate limits, circuit breakers, retries,
deadlines) happens in the Rust core, on one runtime per process.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Dict,
    Iterable,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Type,
    TypeVar,
    Union,
    overload,
)

from . import _assistant, _native
from . import testing as _testing
from ._assistant import AssistantEvent, AssistantReply
from ._families import (
    Books,
    Crypto,
    Dictionary,
    Entertainment,
    Finance,
    Geo,
    Llm,
    Medical,
    Music,
    News,
    Search,
    Translate,
    Tv,
    Video,
    Weather,
    Web,
)
from ._models import AnalyticsRows, Health, Stats
from ._native import AsyncChatStream, BatchProgress, ChatStream, Result
from ._progress import REFRESH_SECONDS, open_bar
from .exceptions import Error

__all__ = ["Client", "AsyncClient", "ConfigSource", "DEFAULT_BATCH_CONCURRENCY"]

#: How many calls of a batch run at once unless ``concurrency=`` says otherwise.
DEFAULT_BATCH_CONCURRENCY = 8

#: Where configuration comes from: ``None`` (defaults, plus the file named
#: by ``POLYRELAY_CONFIG``), a TOML file path, or a dict with the file's
#: structure.
ConfigSource = Union[None, str, "os.PathLike[str]", Mapping[str, Any]]

_C = TypeVar("_C", bound="_Base")


_Time = Union[None, str, datetime]


def _rfc3339(value: _Time) -> Optional[str]:
    """A time as RFC 3339 text; a naive datetime is taken as UTC."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def _analytics_query(
    by: str,
    group_by: Iterable[str],
    capability: Optional[str],
    provider: Optional[str],
    tag: Optional[str],
    since: _Time,
    until: _Time,
) -> Dict[str, Any]:
    """The core's analytics query; unset filters left out."""
    if isinstance(group_by, str):
        group_by = [group_by]
    query: Dict[str, Any] = {"by": by, "group_by": list(group_by)}
    for name, value in (
        ("capability", capability),
        ("provider", provider),
        ("tag", tag),
        ("since", _rfc3339(since)),
        ("until", _rfc3339(until)),
    ):
        if value is not None:
            query[name] = value
    return query


class _TomlText(str):
    """Configuration given as TOML text rather than a file path."""


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _environment(env: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """The variables to read configuration and keys from; those that are not
    valid UTF-8 (never polyrelay's own) are left out rather than failing."""
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if _utf8(k) and _utf8(v)}


def _native_client(
    config: ConfigSource,
    *,
    env: Optional[Mapping[str, str]],
    api_keys: Optional[Mapping[str, str]],
    testing: Optional[bool],
    seed: Optional[int],
) -> _native.Client:
    options: Dict[str, Any] = {
        "env": _environment(env),
        "api_keys": dict(api_keys) if api_keys else None,
        "testing": _testing.is_enabled() if testing is None else testing,
        "seed": seed,
    }
    if isinstance(config, _TomlText):
        return _native.Client(config_toml=str(config), **options)
    if config is None:
        return _native.Client(**options)
    if isinstance(config, (str, os.PathLike)):
        return _native.Client(config_path=os.fspath(config), **options)
    if isinstance(config, Mapping):
        return _native.Client(config=dict(config), **options)
    raise TypeError(
        f"config must be None, a file path or a dict, not {type(config).__name__}"
    )


def _batch_items(params: Iterable[Optional[Mapping[str, Any]]]) -> List[Optional[Dict[str, Any]]]:
    """A batch's parameters as the native client takes them: one dict (or
    ``None``, no parameters) per call."""
    items: List[Optional[Dict[str, Any]]] = []
    for position, item in enumerate(params):
        if item is not None and not isinstance(item, Mapping):
            raise TypeError(
                f"batch item {position} must be a mapping of parameters or None, "
                f"not {type(item).__name__}"
            )
        items.append(None if item is None else dict(item))
    return items


def _concurrency(concurrency: int) -> int:
    # Below 1 is refused by the native side with InvalidRequestError; 0
    # stands for every such value (a negative one cannot cross as unsigned).
    return max(concurrency, 0)


class _Base:
    """What both clients share: construction, introspection, closing."""

    def __init__(
        self,
        config: ConfigSource = None,
        *,
        env: Optional[Mapping[str, str]] = None,
        api_keys: Optional[Mapping[str, str]] = None,
        testing: Optional[bool] = None,
        seed: Optional[int] = None,
    ) -> None:
        self._native = _native_client(
            config, env=env, api_keys=api_keys, testing=testing, seed=seed
        )

    @classmethod
    def from_env(
        cls: Type[_C],
        *,
        env: Optional[Mapping[str, str]] = None,
        api_keys: Optional[Mapping[str, str]] = None,
        testing: Optional[bool] = None,
    ) -> _C:
        """A client configured only by the environment: the file named by
        ``POLYRELAY_CONFIG`` (if set), ``POLYRELAY_*`` overrides and the
        providers' key variables (``env`` instead of ``os.environ`` if given)."""
        return cls(None, env=env, api_keys=api_keys, testing=testing)

    @classmethod
    def from_file(
        cls: Type[_C],
        path: Union[str, "os.PathLike[str]"],
        *,
        env: Optional[Mapping[str, str]] = None,
        api_keys: Optional[Mapping[str, str]] = None,
        testing: Optional[bool] = None,
    ) -> _C:
        """A client configured by the TOML file at ``path`` (environment
        overrides still apply)."""
        return cls(path, env=env, api_keys=api_keys, testing=testing)

    @classmethod
    def from_toml(
        cls: Type[_C],
        text: str,
        *,
        env: Optional[Mapping[str, str]] = None,
        api_keys: Optional[Mapping[str, str]] = None,
        testing: Optional[bool] = None,
    ) -> _C:
        """A client configured by TOML ``text`` (environment overrides still
        apply)."""
        return cls(_TomlText(text), env=env, api_keys=api_keys, testing=testing)

    def health(self) -> Health:
        """Which capabilities can be served now and by whom: per capability
        a ``status`` (``healthy``, ``degraded`` or ``down``), the ``ready``
        providers and the ``unavailable`` ones with the reason; the same per
        model group under ``groups`` (its deployments by name, with its
        ``capability`` and ``strategy``); per configured budget
        (``budgets``, by name) its ``unit`` (``usd`` or ``tokens``),
        ``limit``, ``spent``, ``remaining``, ``period``, ``timezone``,
        ``date`` and ``reset_at``. In-memory (a budget on Redis shows what
        Redis last said); never blocks on the network. A plain dict that
        Jupyter shows as a table."""
        return Health(self._native.health())

    def metrics_text(self) -> str:
        """The client's metrics in the Prometheus text format (0.0.4):
        calls by capability and outcome, latency and overhead histograms,
        attempts by provider, tokens, cost, breaker states, quota left and
        Redis degradation; see :mod:`polyrelay.metrics`. Writes the pending
        call records first (briefly blocking; the GIL is released)."""
        return self._native.metrics_text()

    def stats(self) -> Stats:
        """Per enabled provider, keyed by id: requests, outcomes, latency
        percentiles, LLM tokens (``input_tokens``, ``output_tokens``) and
        spend (``cost_usd``, with ``unpriced_answers`` left out of it),
        circuit breakers, quota, bench time left and whether a key is set
        (never the key). The core's stats, the same object as the
        C ABI's; a plain dict that Jupyter shows as a table."""
        return Stats(self._native.stats())

    def analytics_status(self) -> Dict[str, Any]:
        """The analytics recorder's counters: ``store`` (``memory``,
        ``sqlite``, ``redis`` or ``off``), ``recorded``, ``dropped`` (the
        queue was full), ``written``, ``write_errors``, ``degraded`` and
        ``fallback_writes`` (Redis unreachable: kept in memory)."""
        return self._native.analytics_status()

    def providers(self) -> List[Dict[str, Any]]:
        """Every provider this client knows, enabled or not: the core's
        catalog (the same entries as :func:`polyrelay.providers`, here for
        this client's configuration): ``id``, ``name``, ``capabilities``,
        ``auth`` (``"keyless"``, ``"optional_key"`` or ``"key"``),
        ``key_env``, ``key_in``, ``key_set`` (never the key), ``enabled``,
        ``chains`` (its position in each capability's chain), ``docs_url``,
        ``terms``, ``commercial_use``, ``default_rate_limit``,
        ``default_daily_quota``, ``default_monthly_quota``."""
        return self._native.providers()

    def chain(self, capability: str) -> List[str]:
        """Provider ids of ``capability``'s fallback chain, in order."""
        return self._native.chain(capability)

    @property
    def closed(self) -> bool:
        """Whether the client was closed."""
        return self._native.closed

    def close(self) -> None:
        """Releases providers, cache and connections; later calls raise
        :class:`~polyrelay.UsageError`. Closing twice is harmless."""
        self._native.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<polyrelay.{type(self).__name__} ({state})>"


class Client(_Base):
    """The synchronous client. Thread-safe: share one across threads.

    Calls release the GIL while they wait, can be interrupted with Ctrl-C,
    and work inside a running event loop (Jupyter) and in forked children.

    >>> with polyrelay.Client() as client:                 # doctest: +SKIP
    ...     result = client.weather.current(lat=52.52, lon=13.41)
    ...     print(result.data["temperature_c"], result.provider)

    Args:
        config: ``None`` (defaults, plus the file named by
            ``POLYRELAY_CONFIG``), a TOML file path, or a dict with the
            file's structure.
        env: Environment to read ``POLYRELAY_*`` overrides and provider keys
            from (default: ``os.environ``).
        api_keys: Provider keys by provider id, overriding the environment.
        testing: Testing mode (zero backoff waits, seeded jitter); default:
            whatever :func:`polyrelay.testing.enable` set.
        seed: Seed of the retry jitter, for reproducible runs.
    """

    def __init__(
        self,
        config: ConfigSource = None,
        *,
        env: Optional[Mapping[str, str]] = None,
        api_keys: Optional[Mapping[str, str]] = None,
        testing: Optional[bool] = None,
        seed: Optional[int] = None,
    ) -> None:
        super().__init__(config, env=env, api_keys=api_keys, testing=testing, seed=seed)
        self.weather: Weather[Result] = Weather(self.call)
        self.finance: Finance[Result] = Finance(self.call)
        self.crypto: Crypto[Result] = Crypto(self.call)
        self.llm: Llm[Result, ChatStream] = Llm(self.call, self.stream)
        self.geo: Geo[Result] = Geo(self.call)
        self.news: News[Result] = News(self.call)
        self.web: Web[Result] = Web(self.call)
        self.search: Search[Result] = Search(self.call)
        self.translate: Translate[Result] = Translate(self.call)
        self.dictionary: Dictionary[Result] = Dictionary(self.call)
        self.medical: Medical[Result] = Medical(self.call)
        self.entertainment: Entertainment[Result] = Entertainment(self.call)
        self.tv: Tv[Result] = Tv(self.call)
        self.books: Books[Result] = Books(self.call)
        self.music: Music[Result] = Music(self.call)
        self.video: Video[Result] = Video(self.call)

    def call(self, capability: str, /, **params: Any) -> Result:
        """Calls ``capability`` (e.g. ``"weather.current"``) with ``params``
        and returns its :class:`~polyrelay.Result`, or raises a
        :class:`~polyrelay.Error`. Parameters set to ``None`` are not sent.
        ``tag=`` (a user, a route: letters, digits, ``_ - . : /``) is
        recorded with the call in :meth:`analytics`, whatever the
        capability."""
        return self._native.call(capability, params)

    def analytics(
        self,
        by: Literal["hour", "day"] = "hour",
        group_by: Iterable[str] = (),
        *,
        capability: Optional[str] = None,
        provider: Optional[str] = None,
        tag: Optional[str] = None,
        since: _Time = None,
        until: _Time = None,
    ) -> AnalyticsRows:
        """Analytics of the calls recorded so far (by every process sharing
        the ``[analytics]`` store), this client's pending records included:
        one row per hour or day (``by``) and per value of the ``group_by``
        dimensions (``"capability"``, ``"provider"``, ``"tag"``), over the
        calls the filters keep (``provider="none"``: calls no provider
        answered). ``since`` and ``until`` are datetimes (naive ones are
        UTC) or RFC 3339 text. Rows are plain dicts (see
        :class:`~polyrelay.AnalyticsRows`), with ``to_pandas()``, and a
        chart in Jupyter."""
        query = _analytics_query(by, group_by, capability, provider, tag, since, until)
        return AnalyticsRows(self._native.analytics(query))

    def stream(self, capability: str, /, **params: Any) -> ChatStream:
        """A streamed answer of ``capability`` (only ``"llm.chat"``
        streams), read with ``for``; see :meth:`Llm.stream
        <polyrelay._families.Llm.stream>`. Parameters are checked now."""
        return self._native.stream(capability, params)

    def ping_redis(self) -> Optional[bool]:
        """Whether the Redis this client shares quotas, limits, budgets and
        its cache through answers a ``PING`` now (waiting at most 1 s, with
        the GIL released); ``None`` when the client keeps its state in
        memory. :meth:`health`'s ``redis_degraded`` only reflects operations
        already made, so a fresh client needs this to know (``polyrelay
        check`` uses it)."""
        return self._native.ping_redis()

    def assistant(
        self,
        question: str,
        *,
        conversation: Optional[_assistant.Conversation] = None,
        conversation_id: Optional[str] = None,
        tools: Optional[Sequence[str]] = None,
        max_steps: Optional[int] = None,
        max_tokens: Optional[int] = None,
        max_cost_usd: Optional[float] = None,
        system: Optional[str] = None,
        model: Optional[str] = None,
    ) -> AssistantReply:
        """Asks an LLM that answers with polyrelay's own capabilities as
        tools (weather, FX, crypto, quotes, geocoding, news, meta-search,
        translation, dictionary, books, movies, TV, music, video, drug
        labels, literature, trials; ``tools=`` picks some by capability
        name). Each tool call goes through the normal pipeline (fallback,
        quotas, cache). Continue a conversation by passing the previous
        reply's ``conversation``, or keep it in the analytics store by
        ``conversation_id`` (1 to 128 letters, digits or ``_ - . :``): the
        stored one is continued (a new one started when there is none) and
        saved with the answer; a call that fails saves nothing (see
        :meth:`conversation`).

        Limits, per call: ``max_steps`` LLM turns (default 8),
        ``max_tokens``, ``max_cost_usd``; one reached raises
        :class:`~polyrelay.LimitReachedError` carrying the conversation so
        far. ``system`` replaces the system prompt, ``model`` names the
        model of every turn."""
        options = _assistant.options(tools, max_steps, max_tokens, max_cost_usd, system, model)
        text = self._native.assistant(
            question, options, _assistant.conversation_text(conversation), conversation_id
        )
        return _assistant.reply(text)

    def conversation(self, conversation_id: str) -> Optional[Dict[str, Any]]:
        """The conversation kept under ``conversation_id`` in the
        ``[analytics]`` store (memory by default, the SQLite file, or Redis,
        shared by every process using it), as
        :attr:`AssistantReply.conversation <polyrelay.AssistantReply>` gives
        it; ``None`` when there is none (never saved, deleted, or not
        updated within the analytics retention). A store that cannot be
        reached (Redis down) raises :class:`~polyrelay.UsageError`; a bad
        id raises :class:`~polyrelay.InvalidRequestError`."""
        text = self._native.conversation(conversation_id)
        return None if text is None else _assistant.conversation_data(text)

    def save_conversation(
        self, conversation_id: str, conversation: _assistant.Conversation
    ) -> None:
        """Saves ``conversation`` under ``conversation_id``, replacing what
        was there (two processes saving one id: the last write wins)."""
        self._native.save_conversation(conversation_id, _assistant.conversation_json(conversation))

    def delete_conversation(self, conversation_id: str) -> bool:
        """Deletes the conversation kept under ``conversation_id``; whether
        there was one."""
        return self._native.delete_conversation(conversation_id)

    def conversation_ids(self, limit: int = 100) -> List[str]:
        """The ids of the kept conversations, most recently updated first,
        ``limit`` (at least 1) at most."""
        return self._native.conversation_ids(limit)

    def assistant_stream(
        self,
        question: str,
        *,
        conversation: Optional[_assistant.Conversation] = None,
        conversation_id: Optional[str] = None,
        tools: Optional[Sequence[str]] = None,
        max_steps: Optional[int] = None,
        max_tokens: Optional[int] = None,
        max_cost_usd: Optional[float] = None,
        system: Optional[str] = None,
        model: Optional[str] = None,
    ) -> Iterator[AssistantEvent]:
        """:meth:`assistant` as events, read with ``for``: each tool call
        once its turn's calls have run (``kind == "tool"``), then the answer's text as it is
        written (``"text"``), then ``"done"`` with the whole reply. The
        arguments are checked now; leaving the loop early cancels the turn
        in flight. With ``conversation_id``, the conversation is saved
        just before ``"done"``; a stream left early saves nothing."""
        options = _assistant.options(tools, max_steps, max_tokens, max_cost_usd, system, model)
        stream = self._native.assistant_stream(
            question, options, _assistant.conversation_text(conversation), conversation_id
        )
        return _assistant.events(stream)

    @overload
    def batch(
        self,
        capability: str,
        params: Iterable[Optional[Mapping[str, Any]]],
        /,
        *,
        concurrency: int = ...,
        return_exceptions: Literal[False] = ...,
        progress: Optional[bool] = ...,
    ) -> List[Result]: ...
    @overload
    def batch(
        self,
        capability: str,
        params: Iterable[Optional[Mapping[str, Any]]],
        /,
        *,
        concurrency: int = ...,
        return_exceptions: bool,
        progress: Optional[bool] = ...,
    ) -> List[Union[Result, Error]]: ...
    def batch(
        self,
        capability: str,
        params: Iterable[Optional[Mapping[str, Any]]],
        /,
        *,
        concurrency: int = DEFAULT_BATCH_CONCURRENCY,
        return_exceptions: bool = False,
        progress: Optional[bool] = None,
    ) -> Union[List[Result], List[Union[Result, Error]]]:
        """Calls ``capability`` once per item of ``params`` (a mapping of
        parameters each), with at most ``concurrency`` calls in flight, and
        returns the results in the order of ``params``.

        The calls run concurrently on polyrelay's runtime with the GIL
        released; Ctrl-C cancels the whole batch. As with
        :func:`asyncio.gather`, the first failure is raised and the calls
        still running are cancelled, unless ``return_exceptions=True``:
        then each failed item's :class:`~polyrelay.Error` takes its place in
        the list. ``progress`` shows a progress bar: ``None`` (default) in
        Jupyter or on a terminal, ``True`` always, ``False`` never.

        >>> results = client.batch(                          # doctest: +SKIP
        ...     "weather.current", [{"city": c} for c in ("Oslo", "Rome")],
        ...     concurrency=4,
        ... )
        """
        items = _batch_items(params)
        counter = BatchProgress()
        bar = open_bar(len(items), capability, progress)
        redraw = None if bar is None else lambda: bar.update(counter.completed)
        try:
            return self._native.batch(
                capability, items, _concurrency(concurrency), return_exceptions, counter, redraw
            )
        finally:
            if bar is not None:
                bar.update(counter.completed)
                bar.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.close()


class AsyncClient(_Base):
    """The asyncio client. Calls never block the event loop: they run on
    polyrelay's own runtime, and cancelling the awaiting task cancels the
    call and its HTTP request. Same arguments as :class:`Client`.

    >>> async with polyrelay.AsyncClient() as client:      # doctest: +SKIP
    ...     result = await client.finance.fx_rates(base="EUR", symbols=["USD"])
    """

    def __init__(
        self,
        config: ConfigSource = None,
        *,
        env: Optional[Mapping[str, str]] = None,
        api_keys: Optional[Mapping[str, str]] = None,
        testing: Optional[bool] = None,
        seed: Optional[int] = None,
    ) -> None:
        super().__init__(config, env=env, api_keys=api_keys, testing=testing, seed=seed)
        self.weather: Weather[Awaitable[Result]] = Weather(self.call)
        self.finance: Finance[Awaitable[Result]] = Finance(self.call)
        self.crypto: Crypto[Awaitable[Result]] = Crypto(self.call)
        self.llm: Llm[Awaitable[Result], AsyncChatStream] = Llm(self.call, self.stream)
        self.geo: Geo[Awaitable[Result]] = Geo(self.call)
        self.news: News[Awaitable[Result]] = News(self.call)
        self.web: Web[Awaitable[Result]] = Web(self.call)
        self.search: Search[Awaitable[Result]] = Search(self.call)
        self.translate: Translate[Awaitable[Result]] = Translate(self.call)
        self.dictionary: Dictionary[Awaitable[Result]] = Dictionary(self.call)
        self.medical: Medical[Awaitable[Result]] = Medical(self.call)
        self.entertainment: Entertainment[Awaitable[Result]] = Entertainment(self.call)
        self.tv: Tv[Awaitable[Result]] = Tv(self.call)
        self.books: Books[Awaitable[Result]] = Books(self.call)
        self.music: Music[Awaitable[Result]] = Music(self.call)
        self.video: Video[Awaitable[Result]] = Video(self.call)

    async def call(self, capability: str, /, **params: Any) -> Result:
        """Calls ``capability`` with ``params``; see :meth:`Client.call`."""
        return await self._native.acall(capability, params)

    async def acall(self, capability: str, /, **params: Any) -> Result:
        """Same as :meth:`call` (for code written against both clients)."""
        return await self._native.acall(capability, params)

    async def analytics(
        self,
        by: Literal["hour", "day"] = "hour",
        group_by: Iterable[str] = (),
        *,
        capability: Optional[str] = None,
        provider: Optional[str] = None,
        tag: Optional[str] = None,
        since: _Time = None,
        until: _Time = None,
    ) -> AnalyticsRows:
        """Analytics rows; see :meth:`Client.analytics`."""
        query = _analytics_query(by, group_by, capability, provider, tag, since, until)
        return AnalyticsRows(await self._native.aanalytics(query))

    def stream(self, capability: str, /, **params: Any) -> AsyncChatStream:
        """A streamed answer of ``capability`` (only ``"llm.chat"``
        streams), read with ``async for`` (awaiting it first is optional);
        see :meth:`Client.stream`. Parameters are checked now."""
        return self._native.astream(capability, params)

    async def assistant(
        self,
        question: str,
        *,
        conversation: Optional[_assistant.Conversation] = None,
        conversation_id: Optional[str] = None,
        tools: Optional[Sequence[str]] = None,
        max_steps: Optional[int] = None,
        max_tokens: Optional[int] = None,
        max_cost_usd: Optional[float] = None,
        system: Optional[str] = None,
        model: Optional[str] = None,
    ) -> AssistantReply:
        """Asks the assistant; see :meth:`Client.assistant`. Cancelling
        the awaiting task cancels the turn or tool calls in flight (and
        saves nothing under ``conversation_id``)."""
        options = _assistant.options(tools, max_steps, max_tokens, max_cost_usd, system, model)
        text = await self._native.aassistant(
            question, options, _assistant.conversation_text(conversation), conversation_id
        )
        return _assistant.reply(text)

    async def conversation(self, conversation_id: str) -> Optional[Dict[str, Any]]:
        """The conversation kept under ``conversation_id``; see
        :meth:`Client.conversation`."""
        text = await self._native.aconversation(conversation_id)
        return None if text is None else _assistant.conversation_data(text)

    async def save_conversation(
        self, conversation_id: str, conversation: _assistant.Conversation
    ) -> None:
        """Saves ``conversation`` under ``conversation_id``; see
        :meth:`Client.save_conversation`."""
        await self._native.asave_conversation(
            conversation_id, _assistant.conversation_json(conversation)
        )

    async def delete_conversation(self, conversation_id: str) -> bool:
        """Deletes the conversation kept under ``conversation_id``; whether
        there was one."""
        return await self._native.adelete_conversation(conversation_id)

    async def conversation_ids(self, limit: int = 100) -> List[str]:
        """The ids of the kept conversations, most recently updated first;
        see :meth:`Client.conversation_ids`."""
        return await self._native.aconversation_ids(limit)

    def assistant_stream(
        self,
        question: str,
        *,
        conversation: Optional[_assistant.Conversation] = None,
        conversation_id: Optional[str] = None,
        tools: Optional[Sequence[str]] = None,
        max_steps: Optional[int] = None,
        max_tokens: Optional[int] = None,
        max_cost_usd: Optional[float] = None,
        system: Optional[str] = None,
        model: Optional[str] = None,
    ) -> AsyncIterator[AssistantEvent]:
        """:meth:`Client.assistant_stream`, read with ``async for``."""
        options = _assistant.options(tools, max_steps, max_tokens, max_cost_usd, system, model)
        stream = self._native.assistant_stream(
            question, options, _assistant.conversation_text(conversation), conversation_id
        )
        return _assistant.aevents(stream)

    @overload
    async def batch(
        self,
        capability: str,
        params: Iterable[Optional[Mapping[str, Any]]],
        /,
        *,
        concurrency: int = ...,
        return_exceptions: Literal[False] = ...,
        progress: Optional[bool] = ...,
    ) -> List[Result]: ...
    @overload
    async def batch(
        self,
        capability: str,
        params: Iterable[Optional[Mapping[str, Any]]],
        /,
        *,
        concurrency: int = ...,
        return_exceptions: bool,
        progress: Optional[bool] = ...,
    ) -> List[Union[Result, Error]]: ...
    async def batch(
        self,
        capability: str,
        params: Iterable[Optional[Mapping[str, Any]]],
        /,
        *,
        concurrency: int = DEFAULT_BATCH_CONCURRENCY,
        return_exceptions: bool = False,
        progress: Optional[bool] = None,
    ) -> Union[List[Result], List[Union[Result, Error]]]:
        """Calls ``capability`` once per item of ``params`` with at most
        ``concurrency`` calls in flight; see :meth:`Client.batch`. Never
        blocks the event loop; cancelling the awaiting task cancels every
        call still running."""
        items = _batch_items(params)
        counter = BatchProgress()
        bar = open_bar(len(items), capability, progress)
        running = self._native.abatch(
            capability, items, _concurrency(concurrency), return_exceptions, counter
        )
        if bar is None:
            results: List[Union[Result, Error]] = await running
            return results
        task = asyncio.ensure_future(running)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=REFRESH_SECONDS)
                bar.update(counter.completed)
                if done:
                    results = task.result()
                    return results
        finally:
            if not task.done():
                task.cancel()
            bar.close()

    #: Same as :meth:`batch` (for code written against both clients).
    abatch = batch

    async def ping_redis(self) -> Optional[bool]:
        """Whether the client's Redis answers a ``PING`` now (at most 1 s),
        ``None`` without Redis; as :meth:`Client.ping_redis`."""
        answer: Optional[bool] = await self._native.aping_redis()
        return answer

    async def aclose(self) -> None:
        """Same as :meth:`close`, awaitable."""
        self.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.close()

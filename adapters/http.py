"""What the HTTP adapters (health, adult social care, education) share: settings, one httpx
client and transport per adapter (requests go straight to the transport, whose pool runs on
asyncio's streams: `SourceTransport`; sources are reached directly, no proxy from the
environment), a time budget per call, retries, and the mapping of HTTP failures to
SourceErrors.

Each adapter call (`search`, `items`, `probe`) gets a `Budget` of `timeout_s` seconds: every
request, retry pause and `Retry-After` wait must fit in what is left of it. The hub also
cancels calls at its own deadline; the budget makes the adapter give up cleanly first.

Messages never include a URL or parameters: both carry search keys (names, dates of birth).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import ssl
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
from httpcore._utils import is_socket_readable

from .base import (
    PersonQuery,
    SourceError,
    SourceMisconfigured,
    SourceResponseInvalid,
    SourceTimedOut,
    SourceUnavailable,
    config_value,
    name_parts,
    swapped_date,
)

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 2
DEFAULT_PAGE_SIZE = 200  # few round trips; servers clamp a larger page to their maximum
MAX_PAGES = 20  # a search that needs more pages than this is too broad to be useful
# One source's connection pool: a record read sends a few requests at once (one per search
# key or batch), so 20 covers a busy hub without opening httpx's default 100 sockets to one
# agency system; 10 kept alive saves a TCP (and TLS) handshake on most requests.
DEFAULT_MAX_CONNECTIONS = 20
DEFAULT_MAX_KEEPALIVE = 10
BACKOFF_BASE_S = 0.2
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_MIN_REQUEST_S = 0.05  # not worth waiting to retry with less time than this left

T = TypeVar("T")

# An error hook looks at a failed response (status >= 400) and may name the error more
# precisely than the status can (e.g. a FHIR OperationOutcome's issue code).
ErrorHook = Callable[[httpx.Response], SourceError | None]


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The configuration keys every HTTP adapter reads.

    Attributes:
        url: base URL (required, http or https).
        timeout_s: the budget of one adapter call, all requests and waits included.
        retries: extra attempts after a 5xx, 429 or connection failure.
        page_size: results per page to ask for.
        max_connections: most connections open to the source at once (queue beyond).
        max_keepalive: most idle connections kept open for reuse.
    """

    url: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    page_size: int = DEFAULT_PAGE_SIZE
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_keepalive: int = DEFAULT_MAX_KEEPALIVE

    @classmethod
    def from_config(cls, config: Mapping[str, Any], what: str) -> HttpSettings:
        url = config_value(config, "url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SourceMisconfigured(f"{what} adapter 'url' must be an http(s) URL")
        try:
            timeout_s = float(config.get("timeout_s") or DEFAULT_TIMEOUT_S)
            retries = int(config.get("retries", DEFAULT_RETRIES))
            page_size = int(config.get("page_size") or DEFAULT_PAGE_SIZE)
            max_connections = int(config.get("max_connections", DEFAULT_MAX_CONNECTIONS))
            max_keepalive = int(
                config.get("max_keepalive", min(DEFAULT_MAX_KEEPALIVE, max_connections))
            )
        except (TypeError, ValueError):
            raise SourceMisconfigured(
                f"{what} adapter 'timeout_s', 'retries', 'page_size', 'max_connections' and "
                "'max_keepalive' must be numbers"
            ) from None
        if timeout_s <= 0 or retries < 0 or page_size < 1:
            raise SourceMisconfigured(f"{what} adapter timeout, retries or page size out of range")
        if max_connections < 1 or not 0 <= max_keepalive <= max_connections:
            raise SourceMisconfigured(f"{what} adapter connection limits out of range")
        return cls(
            url.rstrip("/") + "/", timeout_s, retries, page_size, max_connections, max_keepalive
        )

    def limits(self) -> httpx.Limits:
        """The client's connection pool bounds."""
        return httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_keepalive
        )

    def transport(self) -> httpx.AsyncHTTPTransport:
        """The network transport (and connection pool) the source's client and its
        `HttpSource` share."""
        return SourceTransport(self.limits())


class SourceTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, its connection pool (httpcore's) on asyncio's own streams
    (`AsyncioBackend`) instead of anyio's: a quarter less CPU per request, on every request
    of every read. Connects directly (no proxy from the environment), TLS verified against
    the system's CAs as httpx does."""

    def __init__(self, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        """`ssl_context`: whom to trust (default: the system's CAs, as httpx)."""
        super().__init__(limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection as httpcore's pool uses it: asyncio's StreamReader and StreamWriter,
    failures as httpcore's exceptions (httpx maps them to its own)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 (httpcore's interface)
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("read timed out") from None
        except OSError as exc:
            raise httpcore.ReadError(type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("write timed out") from None
        except OSError as exc:
            raise httpcore.WriteError(type(exc).__name__) from exc

    async def aclose(self) -> None:
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            await self.aclose()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as exc:
            await self.aclose()
            raise httpcore.ConnectError(type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            sock = self._writer.get_extra_info("socket")
            return sock is not None and is_socket_readable(sock)
        name = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        if name in ("socket", "ssl_object", "sockname", "peername"):
            return self._writer.get_extra_info(name)
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on plain asyncio (TCP only: sources are URLs)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                local = (local_address, 0) if local_address else None
                reader, writer = await asyncio.open_connection(host, port, local_addr=local)
        except TimeoutError:
            raise httpcore.ConnectTimeout("connect timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(type(exc).__name__) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Budget:
    """The time left for one adapter call."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def allows(self, wait_s: float) -> bool:
        """Whether waiting `wait_s` still leaves time for a request afterwards."""
        return wait_s + _MIN_REQUEST_S < self.remaining()


def retry_after_s(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (delta or HTTP date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_s(attempt: int) -> float:
    """Exponential backoff with full jitter: spreads retries from many hub processes."""
    return random.uniform(0, BACKOFF_BASE_S * 2**attempt)


def status_error(response: httpx.Response, what: str) -> SourceError:
    """What a failed status means for the caller."""
    status = response.status_code
    if status in (401, 403):
        return SourceMisconfigured(f"{what} source refused our credentials ({status})")
    if status == 429:
        return SourceUnavailable(f"{what} source is rate-limiting us (429)")
    if status >= 500:
        return SourceUnavailable(f"{what} source failed ({status})")
    # 400/404/405...: we asked for something this source does not serve: wrong base URL,
    # or an API version it does not speak.
    return SourceMisconfigured(f"{what} source rejected the request ({status})")


async def gather_lists(calls: Sequence[Coroutine[Any, Any, list[T]]]) -> list[T]:
    """Run `calls` concurrently and concatenate their lists; the first SourceError cancels
    the others and is raised (a partial answer must never look like a whole one)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in calls]
    except ExceptionGroup as failed:
        errors = list(failed.exceptions)
        first = next((e for e in errors if isinstance(e, SourceError)), None)
        if first is None:
            raise errors[0] from failed  # a bug, not the source: keep its traceback
        raise first from None
    return [x for t in tasks for x in t.result()]


def person_searches(query: PersonQuery) -> list[list[tuple[str, str]]]:
    """The query parameters of one person search per key `query` gives (NHS number; date of
    birth; each family name part, narrowed to the day/month swap when a date of birth is
    given; each postcode), for REST sources searched one key at a time and unioned by id."""
    searches: list[list[tuple[str, str]]] = []
    if query.nhs_number:
        searches.append([("nhs_number", "".join(query.nhs_number.split()))])
    if query.date_of_birth:
        searches.append([("date_of_birth", query.date_of_birth.isoformat())])
    swapped = swapped_date(query.date_of_birth) if query.date_of_birth else None
    if query.family_name and (swapped or not query.date_of_birth):
        # with a date of birth, a family name only narrows its day/month swap
        extra = [("date_of_birth", swapped.isoformat())] if swapped else []
        searches += [[("family_name", part), *extra] for part in name_parts(query.family_name)]
    for pc in dict.fromkeys(p.strip().upper() for p in query.postcodes if p and p.strip()):
        searches.append([("postcode", pc)])
    return searches


class HttpSource:
    """One HTTP agency system: sends requests within a budget, retries what is worth
    retrying, and turns every failure into a SourceError."""

    def __init__(
        self,
        what: str,
        settings: HttpSettings,
        client: httpx.AsyncClient,
        transport: httpx.AsyncBaseTransport,
        on_error: ErrorHook | None = None,
    ) -> None:
        """`client` carries the source's headers and event hooks (and, for OAuth, fetches
        tokens); requests go straight to `transport`, the client's own (`transport(...)`)."""
        self.what = what
        self.settings = settings
        self.client = client
        self.transport = transport
        self._on_error = on_error
        origin = urlsplit(settings.url)
        self._origin = (origin.scheme, origin.netloc)
        self._base = httpx.URL(settings.url)
        self._paths: dict[str, httpx.URL] = {}

    def budget(self) -> Budget:
        return Budget(self.settings.timeout_s)

    def same_origin(self, url: str) -> str:
        """A `next` link made absolute; it must point back at this source, or following
        it would hand our credentials to another host."""
        absolute = urljoin(self.settings.url, url)
        parts = urlsplit(absolute)
        if (parts.scheme, parts.netloc) != self._origin:
            raise SourceResponseInvalid(f"{self.what} source sent a link to another host")
        return absolute

    async def pages(self, path: str, params: Any, budget: Budget) -> list[dict[str, Any]]:
        """Every item of a paged listing, `{"items": [...], "next": URL or null}`, following
        `next` on this source (at most MAX_PAGES pages)."""
        found: list[dict[str, Any]] = []
        url, query = path, params
        for _ in range(MAX_PAGES):
            payload = await self.get_json(url, query, budget)
            items = payload.get("items") if isinstance(payload, dict) else None
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise SourceResponseInvalid(f"{self.what} response has no 'items' list")
            found += items
            next_url = payload.get("next")
            if not next_url:
                return found
            if not isinstance(next_url, str):
                raise SourceResponseInvalid(f"{self.what} 'next' is not a URL")
            url, query = self.same_origin(next_url), None
        raise SourceResponseInvalid(f"{self.what} listing ran past {MAX_PAGES} pages")

    async def before_request(self, budget: Budget) -> None:
        """Hook for authentication (fetch a token) before each attempt."""

    async def after_unauthorized(self, budget: Budget) -> bool:
        """Hook called on a 401; True to retry once with fresh credentials."""
        return False

    async def get_json(
        self, url: str, params: Any = None, budget: Budget | None = None, *, auth: bool = True
    ) -> Any:
        """GET and parse JSON; raises a SourceError for anything else."""
        response = await self.get(url, params, budget or self.budget(), auth=auth)
        try:
            return response.json()
        except ValueError:  # includes UnicodeDecodeError
            raise SourceResponseInvalid(
                f"{self.what} source sent a body that is not JSON"
            ) from None

    async def get(
        self,
        url: str,
        params: Any,
        budget: Budget,
        *,
        auth: bool = True,
        accept: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """GET within `budget`: a response below 400 (or with a status in `accept`), else a
        SourceError. Retries 5xx, 429 and connection failures while the budget allows."""
        attempt = 0
        reauthorized = False
        while True:
            remaining = budget.remaining()
            if remaining <= 0:
                raise SourceTimedOut(f"{self.what} source did not answer in time")
            try:
                if auth:
                    await self.before_request(budget)
                response = await self._send(url, params, remaining, auth=auth)
            except _Retryable as exc:
                wait = backoff_s(attempt)
                if attempt < self.settings.retries and budget.allows(wait):
                    attempt += 1
                    await asyncio.sleep(wait)
                    continue
                raise exc.error from None
            if response.status_code < 400 or response.status_code in accept:
                return response
            if response.status_code == 401 and auth and not reauthorized:
                reauthorized = True
                if await self.after_unauthorized(budget):
                    continue
            wait_s = self._retry_wait(response, attempt)
            if wait_s is not None and attempt < self.settings.retries and budget.allows(wait_s):
                attempt += 1
                await asyncio.sleep(wait_s)
                continue
            raise self._error(response)

    def _retry_wait(self, response: httpx.Response, attempt: int) -> float | None:
        if response.status_code == 429:
            # Without Retry-After we back off as for a 5xx.
            after = retry_after_s(response)
            return backoff_s(attempt) if after is None else after
        if response.status_code in _RETRY_STATUSES:
            return backoff_s(attempt)
        return None

    def _error(self, response: httpx.Response) -> SourceError:
        if self._on_error is not None and (error := self._on_error(response)) is not None:
            return error
        return status_error(response, self.what)

    def _url(self, url: str) -> httpx.URL:
        """`url` on this source: absolute (a `next` link) as it is; a path below the base
        URL appended to its path, as httpx's `base_url` does (built once per path)."""
        found = self._paths.get(url)
        if found is None:
            given = httpx.URL(url)
            if given.is_relative_url:
                path = self._base.raw_path + given.raw_path.lstrip(b"/")
                given = self._base.copy_with(raw_path=path)
            found = given
            if len(self._paths) < 256:
                self._paths[url] = found
        return found

    def request_headers(self, auth: bool) -> httpx.Headers:
        """The client's headers (the source's Accept, API key or static token)."""
        return self.client.headers

    async def _send(self, url: str, params: Any, timeout_s: float, *, auth: bool) -> httpx.Response:
        """One attempt, straight to the transport: the client's request building, redirect
        and cookie handling are a fifth of the CPU of a request to a source that sends
        neither, on every one of a read's requests. Its event hooks still see each request
        and response. The body is read here so that a connection cut mid-body is told apart
        from one that never answered."""
        try:
            target = self._url(url)
            if params:
                target = target.copy_merge_params(params)
            request = httpx.Request(
                "GET",
                target,
                headers=self.request_headers(auth),
                extensions={"timeout": httpx.Timeout(timeout_s).as_dict()},
            )
            for hook in self.client.event_hooks["request"]:
                await hook(request)
            response = await self.transport.handle_async_request(request)
            response.request = request
            try:
                await response.aread()
            except httpx.TimeoutException:
                raise _Retryable(
                    SourceTimedOut(f"{self.what} source did not answer in time")
                ) from None
            except httpx.TransportError:
                raise SourceResponseInvalid(
                    f"{self.what} source cut its answer off ({response.status_code})"
                ) from None
            finally:
                await response.aclose()
            for hook in self.client.event_hooks["response"]:
                await hook(response)
            return response
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise SourceMisconfigured(f"{self.what} source URL is not usable") from None
        except httpx.TimeoutException:
            raise _Retryable(SourceTimedOut(f"{self.what} source did not answer in time")) from None
        except (httpx.TransportError, OSError) as exc:
            raise _Retryable(
                SourceUnavailable(f"{self.what} source unreachable ({type(exc).__name__})")
            ) from None

    async def aclose(self) -> None:
        await self.client.aclose()  # and its transport


class _Retryable(Exception):
    """A failed attempt worth another try; carries the error to raise when out of tries."""

    def __init__(self, error: SourceError) -> None:
        super().__init__(str(error))
        self.error = error


class OAuthHttpSource(HttpSource):
    """An HttpSource whose client is Authlib's `AsyncOAuth2Client` with the client
    credentials grant: the token is fetched on first use, reused, fetched again shortly
    before it expires (`leeway`) and once more if the source answers 401 to it."""

    def __init__(
        self,
        what: str,
        settings: HttpSettings,
        client: Any,  # authlib AsyncOAuth2Client (an httpx.AsyncClient; untyped upstream)
        transport: httpx.AsyncBaseTransport,
        on_error: ErrorHook | None = None,
    ) -> None:
        super().__init__(what, settings, client, transport, on_error)
        self.oauth: Any = client
        self._token_lock = asyncio.Lock()
        self.tokens_fetched = 0

    def request_headers(self, auth: bool) -> httpx.Headers:
        """The client's headers and, to authenticate, the bearer token `before_request`
        made sure of (sent as Authlib's client would)."""
        headers = self.client.headers
        token = self.oauth.token
        if not auth or not token:
            return headers
        headers = headers.copy()
        headers["Authorization"] = f"Bearer {token['access_token']}"
        return headers

    async def before_request(self, budget: Budget) -> None:
        token = self.oauth.token
        if not token or token.is_expired(leeway=self.oauth.leeway):
            await self._fetch_token(budget, stale=token)

    async def after_unauthorized(self, budget: Budget) -> bool:
        # The source no longer accepts our token (revoked, restarted): get a new one once.
        await self._fetch_token(budget, stale=self.oauth.token, force=True)
        return True

    async def authenticate(self, budget: Budget) -> None:
        """Fetch a fresh token now (probe)."""
        await self._fetch_token(budget, stale=self.oauth.token, force=True)

    async def _fetch_token(self, budget: Budget, stale: Any, force: bool = False) -> None:
        async with self._token_lock:
            current = self.oauth.token
            fresh = bool(current) and not current.is_expired(leeway=self.oauth.leeway)
            # Fresh and either wanted, or fetched by another request while we waited.
            if fresh and (not force or current is not stale):
                return
            try:
                await self.oauth.fetch_token(timeout=max(budget.remaining(), 0.01))
            except Exception as exc:
                raise self.token_error(exc) from None
            self.tokens_fetched += 1

    def token_error(self, exc: Exception) -> SourceError | _Retryable:
        """What a failed token request means (a _Retryable when worth another try)."""
        if isinstance(exc, httpx.HTTPStatusError):
            status = exc.response.status_code
            if status == 429 or status in _RETRY_STATUSES:
                return _Retryable(SourceUnavailable(f"{self.what} token endpoint failed"))
            return SourceMisconfigured(f"{self.what} token endpoint refused us ({status})")
        if isinstance(exc, httpx.TimeoutException):
            return _Retryable(SourceTimedOut(f"{self.what} token endpoint timed out"))
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
            return SourceMisconfigured(f"{self.what} token URL is not usable")
        if isinstance(exc, (httpx.TransportError, OSError)):
            return _Retryable(SourceUnavailable(f"{self.what} token endpoint unreachable"))
        error = getattr(exc, "error", None)
        if isinstance(error, str):  # an OAuth error response, e.g. invalid_client
            return SourceMisconfigured(f"{self.what} token endpoint refused us ({error})")
        if isinstance(exc, ValueError):
            return SourceResponseInvalid(f"{self.what} token endpoint sent an unreadable answer")
        return SourceMisconfigured(f"{self.what} OAuth client failed ({type(exc).__name__})")

    async def _send(self, url: str, params: Any, timeout_s: float, *, auth: bool) -> httpx.Response:
        try:
            return await super()._send(url, params, timeout_s, auth=auth)
        except (SourceError, _Retryable):
            raise
        except Exception as exc:  # a refresh inside Authlib's own request path
            raise self.token_error(exc) from None

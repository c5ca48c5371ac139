"""One ledger of a session's requests and responses, and the only issuer of the proxy's event ids.

The pipeline keeps it current, once per frame, before any stage runs: a `response.create` is
recorded when it leaves for upstream (`sent`), a server frame when it arrives (`on_server`). It
binds each create to its `response.created` (the protocol has no request id for responses: creates
are answered in the order sent, an `error` naming a create removes it), knows in-band from
out-of-band and which in-band response is active. Stages read the frozen `Response` the current
server frame is about (`about`) instead of re-parsing.

Ids: events the proxy names (a repaired event the client sent without an id, a retry's attempt)
get an id issued here; `client_id_for` maps it back to the client's (None: it sent none). The
pipeline does that once, at the server lane's exit, so every stage sees the id that went upstream.
Everything is bounded: a client cannot grow it by sending creates the API never answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

OWN_EVENT_PREFIX: Final = "proxy_evt_"
SERVER_TYPES: Final = frozenset({"response.created", "response.done", "error"})
_MEMORY = 256  # proxy-named events and rule attributions remembered (the most recent)
_PENDING = 64  # creates awaiting their response.created, the oldest dropped beyond
_OPEN = 64  # responses created and not yet done, the oldest dropped beyond


@dataclass(frozen=True, slots=True)
class Request:
    """A `response.create` as it went upstream."""

    event_id: str | None  # as sent upstream (a proxy id when the client sent none)
    in_band: bool
    sent_at: float


@dataclass(frozen=True, slots=True)
class Response:
    """A response the API created; `request` is the create it answers (None: the server started it)."""

    response_id: str
    in_band: bool
    request: Request | None
    created_at: float | None  # None: its response.created was never seen (a done out of the blue)
    done: bool = False

    @property
    def started_at(self) -> float | None:
        """When the client asked for it (its create was sent), else when the API created it."""
        if self.created_at is None:
            return None
        return self.request.sent_at if self.request is not None else self.created_at


def request_in_band(event: dict[str, Any]) -> bool:
    """A create writes to the conversation unless its `response.conversation` is "none"."""
    response = event.get("response")
    return not (isinstance(response, dict) and response.get("conversation") == "none")


def response_in_band(response: dict[str, Any]) -> bool:
    """Out-of-band responses carry `conversation_id: null`; in-band ones an id (absent: in-band)."""
    return response.get("conversation_id", "") is not None


class Ledger:
    __slots__ = ("_issued", "_open", "_own", "_pending", "_touched", "about", "active_in_band")

    def __init__(self) -> None:
        # Every container is made on its first entry (None until then): five empty ones cost ~560 B
        # in every idle session (issue 26). Insertion order is the age order the bounds evict by.
        self._issued = 0  # proxy ids issued so far
        self._own: dict[str, str | None] | None = None  # proxy-issued id -> client's id
        self._touched: dict[str, list[str]] | None = None  # event id -> rules that changed it
        self._pending: list[Request] | None = None  # at most _PENDING entries
        self._open: dict[str, Response] | None = None
        self.active_in_band: Response | None = None
        self.about: Response | None = None  # the response the server frame being handled is about

    # -- ids ----------------------------------------------------------------------------------

    def new_event_id(self) -> str:
        """A fresh `proxy_evt_N` for an event the proxy writes itself (e.g. an error it answers)."""
        self._issued += 1
        return f"{OWN_EVENT_PREFIX}{self._issued}"

    def issue(self, client_id: str | None = None, name: str | None = None) -> str:
        """An id for a client event the proxy sends under its own name (`proxy_evt_N`, or `name`
        such as a retry attempt's); errors naming it are mapped back to `client_id`."""
        event_id = name if name is not None else self.new_event_id()
        if self._own is None:
            self._own = {}
        _bounded_set(self._own, event_id, client_id)
        return event_id

    def name(self, event: dict[str, Any]) -> str:
        """The event's own string id, or a new proxy id set on it."""
        event_id = event.get("event_id")
        if not isinstance(event_id, str):
            event_id = event["event_id"] = self.issue()
        return event_id

    def is_own(self, event_id: Any) -> bool:
        return self._own is not None and isinstance(event_id, str) and event_id in self._own

    def client_id_for(self, event_id: Any) -> Any:
        """The id the client knows the event by: a proxy id maps back, any other value is the client's."""
        return self._own[event_id] if self._own is not None and self.is_own(event_id) else event_id

    def remember_rules(self, event_id: str, rules: list[str]) -> None:
        if self._touched is None:
            self._touched = {}
        _bounded_set(self._touched, event_id, rules)

    def rules_for(self, event_id: Any) -> list[str] | None:
        if self._touched is None or not isinstance(event_id, str):
            return None
        return self._touched.get(event_id)

    # -- responses ----------------------------------------------------------------------------

    def sent(self, event: dict[str, Any], now: float) -> None:
        """A `response.create` left for upstream."""
        event_id = event.get("event_id")
        request = Request(event_id if isinstance(event_id, str) else None, request_in_band(event), now)
        if self._pending is None:
            self._pending = []
        self._pending.append(request)
        if len(self._pending) > _PENDING:
            del self._pending[0]

    def by_response_id(self, response_id: Any) -> Response | None:
        if self._open is None or not isinstance(response_id, str):
            return None
        return self._open.get(response_id)

    def on_server(self, event_type: str | None, event: dict[str, Any] | None, now: float) -> None:
        """Before the stages see a server frame: bind, end or refuse what it is about."""
        self.about = None
        if event is None:
            return
        if event_type == "error":
            error = event.get("error")
            self._refused(error.get("event_id") if isinstance(error, dict) else None)
            return
        response = event.get("response")
        if not isinstance(response, dict) or not isinstance(response.get("id"), str):
            return
        if event_type == "response.created":
            self.about = self._created(response["id"], response_in_band(response), now)
        elif event_type == "response.done":
            self.about = self._done(response["id"], response)

    def _created(self, response_id: str, in_band: bool, now: float) -> Response:
        pending = self._pending or ()
        request = next((r for r in pending if r.in_band == in_band), None)
        if request is not None and self._pending is not None:
            self._pending.remove(request)
        created = Response(response_id, in_band, request, now)
        if self._open is None:
            self._open = {}
        self._open[response_id] = created
        if len(self._open) > _OPEN:
            del self._open[next(iter(self._open))]
        if in_band:
            self.active_in_band = created
        return created

    def _done(self, response_id: str, response: dict[str, Any]) -> Response:
        # A failed response.done may carry no conversation_id: its response.created told.
        known = self._open.pop(response_id, None) if self._open is not None else None
        if known is None:  # never saw it created: as the done says, untimed
            known = Response(response_id, response_in_band(response), None, None)
        if self.active_in_band is not None and self.active_in_band.response_id == response_id:
            self.active_in_band = None
        return Response(known.response_id, known.in_band, known.request, known.created_at, done=True)

    def _refused(self, event_id: Any) -> None:
        """An upstream error named this create: it will get no response.created."""
        if isinstance(event_id, str) and self._pending is not None:
            for request in self._pending:
                if request.event_id == event_id:
                    self._pending.remove(request)
                    return


def _bounded_set(store: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` as the newest entry (a plain dict, not an OrderedDict: ~130 B less each, and the
    same order: a key set again is moved to the end), the oldest dropped past _MEMORY."""
    store.pop(key, None)
    store[key] = value
    while len(store) > _MEMORY:
        del store[next(iter(store))]

"""The widget's side of the visitor protocol (docs/visitor-protocol.md) for the programs
that speak it without a browser: the tests' scripted visitor, `make bench`'s load and
`make chaos`'s retrying visitors. Each drives it its own way (one message at a time,
ten thousand sockets, resend until acknowledged); what a visitor sends and how it reads
what it is sent is here, once.

- a session: POST /api/visitor/session {project, visitor_token} -> 201 {visitor_token, visitor_id};
- the socket: /ws/visitor?after=<last seq shown>, the token as a subprotocol beside
  `parley.v1` (never in the URL), first frame `hello`;
- a message: {"type": "message", "id", "text", "page_url"}, answered by `ack` (with
  its seq) or `error` (with a code; RETRYABLE ones are sent again, same id);
- uploads and downloads carry the token as a header."""
from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
import orjson

SUBPROTOCOL = "parley.v1"
RETRYABLE = frozenset({"busy", "service_unavailable", "rate_limited"})


def socket_protocols(token: str) -> tuple[str, str]:
    """How the widget sends its token on /ws/visitor: as a subprotocol, not in the URL."""
    return SUBPROTOCOL, f"parley.token.{token}"


def token_headers(token: str) -> dict[str, str]:
    """How the widget sends its token on uploads and downloads."""
    return {"X-Parley-Visitor-Token": token}


def message_frame(message_id: str, text: str, page_url: str | None = None, **extra) -> str:
    frame = {"type": "message", "id": message_id, "text": text, **extra}
    if page_url is not None:
        frame["page_url"] = page_url
    return orjson.dumps(frame).decode()


async def start_session(http, url: str, project: str, token: str | None = None,
                        headers: dict | None = None) -> tuple[int, dict | None]:
    """(status, body) of POST /api/visitor/session; `url` is the gateway's path or full
    URL for it (a TestClient takes the path). A known visitor sends its token to stay
    who it is."""
    async with http.post(url, json={"project": project, "visitor_token": token}, headers=headers) as r:
        try:
            return r.status, await r.json(content_type=None)
        except ValueError:
            return r.status, None


async def open_socket(http, url: str, token: str, *, after: int = 0, headers: dict | None = None,
                      **options) -> aiohttp.ClientWebSocketResponse:
    """The widget's socket, resuming after seq `after`; `url` is the gateway's
    /ws/visitor (path or full URL). `options` go to aiohttp (heartbeat, autoping...)."""
    return await http.ws_connect(f"{url}?after={after}", protocols=socket_protocols(token), headers=headers,
                                 **options)


@dataclass
class VisitorView:
    """What a widget knows from the frames it was sent, on every socket it had: the
    conversation it is in, its events by seq (seqs start again at 1 in a new
    conversation), the answer to each message it sent. A seq shown twice is a
    duplicate; a seq below the last one shown is out of order: both must stay 0."""
    conversation_id: str | None = None
    conversations: list[str] = field(default_factory=list)    # in the order they began
    last_seq: int = 0
    seen: dict[int, dict] = field(default_factory=dict)       # seq -> event frame, this conversation
    events: list[dict] = field(default_factory=list)          # every event frame, every conversation
    answers: dict[str, dict] = field(default_factory=dict)    # message id -> its ack or error frame
    errors: list[dict] = field(default_factory=list)          # every error frame
    frames: list[dict] = field(default_factory=list)          # every frame, as sent
    duplicates: int = 0
    out_of_order: int = 0

    def receive(self, frame: dict) -> None:
        self.frames.append(frame)
        kind = frame.get("type")
        if kind == "hello":
            if frame.get("conversation_id"):
                self._follow(frame["conversation_id"])
        elif kind in ("conversation", "offline_saved"):
            self._follow(frame["conversation_id"])
        elif kind == "event":
            seq = frame["seq"]
            if seq in self.seen:
                self.duplicates += 1
                return
            if seq < self.last_seq:
                self.out_of_order += 1
            else:
                self.last_seq = seq
            self.seen[seq] = frame
            self.events.append(frame)
        elif kind in ("ack", "error"):
            if kind == "ack" and frame.get("conversation_id"):
                self._follow(frame["conversation_id"])   # a first message's ack names the conversation it began
            if frame.get("id"):
                self.answers[frame["id"]] = frame
            if kind == "error":
                self.errors.append(frame)

    def _follow(self, conversation_id: str) -> None:
        if conversation_id == self.conversation_id:
            return
        if self.conversation_id is not None:   # a new conversation (after a closed one, or the offline form's)
            self.seen, self.last_seq = {}, 0
        self.conversation_id = conversation_id
        self.conversations.append(conversation_id)

    @property
    def acks(self) -> dict[str, int]:
        """Message id -> the seq its ack gave it."""
        return {i: a["seq"] for i, a in self.answers.items() if a["type"] == "ack"}

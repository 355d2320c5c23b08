"""uvicorn's HTTP/1.1 protocol (h11) with a deadline for each request's head.

uvicorn waits for a request line and headers as long as the client likes: a
connection that sends nothing, or half a header and then nothing, holds a socket
of the server for good (the "slowloris" pattern). Here a connection gets
``head_timeout_s`` seconds for each request's head, counted from when the
connection opened or the previous answer was sent. A head that started to
arrive and did not finish is answered ``408 Request Timeout`` with a message; a
connection that sent nothing is closed, as uvicorn closes an idle keep-alive
connection. The size of a head is already bounded by h11 (16 KiB: then 400), and
a body's time by the app (``body_timeout_s``).

uvicorn is the ``serve`` extra: import this module only after checking for it.
"""

from __future__ import annotations

HEAD_TIMEOUT_S = 30.0


def config(app, *, head_timeout_s: float = HEAD_TIMEOUT_S, **kwargs):
    """A ``uvicorn.Config`` for ``app`` that serves HTTP/1.1 with the head deadline."""
    import uvicorn

    return uvicorn.Config(app, http=guarded_protocol(head_timeout_s), **kwargs)


def guarded_protocol(head_timeout_s: float = HEAD_TIMEOUT_S):
    """uvicorn's ``H11Protocol``, closing connections whose request head is late (see the module)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    message = f"the request's headers did not arrive within {head_timeout_s:g} s\n".encode()

    class HeadDeadlineH11Protocol(H11Protocol):
        head_timeout = head_timeout_s

        def connection_made(self, transport):
            super().connection_made(transport)
            self._head_timer = None
            self._arm_head_timer()

        def _arm_head_timer(self):
            self._disarm_head_timer()
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_late)

        def _disarm_head_timer(self):
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def handle_events(self):
            super().handle_events()
            # Past IDLE, the client has sent a whole request head (or broke the protocol: answered already).
            if self.conn.their_state is not h11.IDLE:
                self._disarm_head_timer()

        def on_response_complete(self):
            super().on_response_complete()
            # uvicorn's keep-alive timer closes a connection that stays silent; this one also
            # covers a next request whose head starts and stalls.
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm_head_timer()

        def connection_lost(self, exc):
            self._disarm_head_timer()
            super().connection_lost(exc)

        def _head_late(self):
            self._head_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self.conn.trailing_data[0]:   # part of a head arrived: h11 holds it unparsed
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\n"
                                     b"content-type: text/plain; charset=utf-8\r\n"
                                     b"connection: close\r\n"
                                     b"content-length: " + str(len(message)).encode() + b"\r\n\r\n" + message)
            self.transport.close()

    return HeadDeadlineH11Protocol

"""API calls for asyncio that never block the event loop: :class:`AsyncClient`.

A call runs on one of the library's threads (``enos_client_send_async``); the
coroutine waits for the call's descriptor to become readable through the
event loop's ``add_reader``, so no Python thread waits for the network and
the library's threads never need the GIL for a plain call. Cancelling the
task cancels the call (``enos_call_cancel``): the task ends at once.

A request with Python callbacks (a file object part, an output object, a
progress function) or files the binding opened is used by the library's
thread until that thread is done with it, which a cancel does not wait for:
such a call is also watched by a completion callback, and whichever of the
coroutine and the library's thread finishes last frees the call and lets go
of the callbacks and files.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import itertools
import threading
from typing import Callable, Dict, Optional, Union

from . import (Client, Response, Token, _COMPLETION_CALLBACK, _check, _describe_request, _RequestBuilder)

_lock = threading.Lock()
_watched: Dict[int, "_CallInFlight"] = {}
_ids = itertools.count(1)
_NO_COMPLETION = _COMPLETION_CALLBACK()  # NULL: the descriptor says when it is done


class _CallInFlight:
    """One call and what it holds, freed when its last owner lets go: the
    coroutine, and (for a request with callbacks or files) the library's
    thread."""

    def __init__(self, lib: ctypes.CDLL, request: _RequestBuilder) -> None:
        self.lib = lib
        self.request = request
        self.call: Optional[int] = None
        self.id = next(_ids)
        self.watched = request.needs_release()
        self.owners = 2 if self.watched else 1
        if self.watched:
            with _lock:
                _watched[self.id] = self

    def let_go(self) -> None:
        with _lock:
            self.owners -= 1
            if self.owners != 0:
                return
            _watched.pop(self.id, None)
            call, self.call = self.call, None
        if call is not None:
            self.lib.enos_call_free(call)
        self.request.release()

    def never_started(self) -> None:
        """``enos_client_send_async`` failed: no call, no completion."""
        with _lock:
            _watched.pop(self.id, None)
        self.request.release()

    async def done(self) -> None:
        """Returns once the call is done, without blocking the event loop."""
        loop = asyncio.get_running_loop()
        fd = self.lib.enos_call_fd(self.call)
        if fd < 0:  # no descriptor could be made (out of descriptors): look every 5 ms
            while not self.lib.enos_call_done(self.call):
                await asyncio.sleep(0.005)
            return
        ready = loop.create_future()
        loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await ready
        finally:
            loop.remove_reader(fd)


@_COMPLETION_CALLBACK
def _worker_done(user_data: Optional[int], _call: Optional[int]) -> None:
    """The library's thread is done with a watched call (any thread)."""
    with _lock:
        entry = _watched.get(user_data or 0)
    if entry is not None:
        entry.let_go()


@atexit.register
def _free_at_exit() -> None:
    """No completion may come into an interpreter that is going away: the
    watched calls still in flight are freed (cancelled, their completion
    callbacks no longer called); no coroutine will resume to use them."""
    with _lock:
        entries = list(_watched.values())
        _watched.clear()
        calls = []
        for entry in entries:
            entry.owners = -1  # never freed again by let_go
            calls.append((entry.lib, entry.call))
            entry.call = None
    for lib, call in calls:
        if call is not None:
            lib.enos_call_free(call)


class AsyncClient:
    """A client for asyncio: ``await client.request(...)`` takes the arguments
    of :meth:`Client.request` and returns the same :class:`Response`, while
    the event loop goes on; hundreds may be gathered (at most
    ``max_concurrent_calls`` run at once, default 64, the rest wait in order).
    Cancelling the task cancels the call: a queued call never starts, a
    running call's connection is shut down, and the task raises
    ``CancelledError`` at once. Callbacks of a request (``progress``, file
    objects) run on a library thread.

    The constructor takes :class:`Client`'s options. Use ``async with``, or
    call :meth:`close`, which cancels the calls in flight (their tasks raise
    :class:`EnosCancelledError`).
    """

    def __init__(self, gateway_url: str, app_key: str, app_secret: str, **options) -> None:
        self._client = Client(gateway_url, app_key, app_secret, **options)
        self._lib = self._client._lib

    async def request(self, method: str, path: str, *, body: Union[bytes, str, None] = None, json=None,
                      data=None, files=None, fields=None, headers: Optional[Dict[str, str]] = None,
                      output=None, content_type: Optional[str] = None,
                      progress: Optional[Callable[[int, int, int, Optional[int]], None]] = None,
                      timeout: Optional[float] = None) -> Response:
        """:meth:`Client.request`, as a coroutine that never blocks the loop."""
        lib = self._lib
        request = _describe_request(lib, method, path, body=body, json=json, data=data, files=files,
                                    fields=fields, headers=headers, output=output, content_type=content_type,
                                    progress=progress, timeout=timeout)
        entry = _CallInFlight(lib, request)
        call = ctypes.c_void_p()
        try:
            handle = self._client._enter()
            try:
                status = lib.enos_client_send_async(handle, request.handle,
                                                    _worker_done if entry.watched else _NO_COMPLETION, entry.id,
                                                    ctypes.byref(call))
            finally:
                self._client._leave()
        except BaseException:
            request.free_handle()
            entry.never_started()
            raise
        request.free_handle()  # the call holds its own copy
        if status != 0:
            entry.never_started()
            _check(lib, status)
        entry.call = call.value
        try:
            await entry.done()
            response = ctypes.c_void_p()
            status = lib.enos_call_wait(entry.call, 0, ctypes.byref(response))
            return request.outcome(status, response)
        except asyncio.CancelledError:
            lib.enos_call_cancel(entry.call)
            raise
        finally:
            entry.let_go()

    async def get_token(self) -> Token:
        """:meth:`Client.get_token` (a request), on a thread of the loop's executor."""
        return await asyncio.to_thread(self._client.get_token)

    async def refresh_token(self, access_token: str) -> Token:
        """:meth:`Client.refresh_token` (a request), on a thread of the loop's executor."""
        return await asyncio.to_thread(self._client.refresh_token, access_token)

    async def access_token(self) -> str:
        """A token valid now (:meth:`Client.access_token`); a thread of the
        loop's executor waits only when it must be fetched."""
        return await asyncio.to_thread(self._client.access_token)

    async def auth_headers(self, query: str = "", body: Union[bytes, str, None] = None) -> Dict[str, str]:
        """:meth:`Client.auth_headers`, as :meth:`access_token`."""
        return await asyncio.to_thread(self._client.auth_headers, query, body)

    def invalidate(self, rejected_token: Optional[str] = None) -> None:
        """:meth:`Client.invalidate` (no network)."""
        self._client.invalidate(rejected_token)

    def counters(self) -> Dict[str, int]:
        """:meth:`Client.counters`."""
        return self._client.counters()

    def close(self) -> None:
        """Frees the client: calls in flight are cancelled. Idempotent."""
        self._client.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.close()

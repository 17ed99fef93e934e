"""EnOS API-gateway access tokens from Python, through libenos_token (ctypes).

No dependencies beyond the standard library. The shared library is found,
in order: the ``library`` argument, the ``ENOS_TOKEN_LIB`` environment
variable, the copy inside this package (the wheel carries one), the
repository's ``target/`` when run from a checkout, then the system loader.

    >>> with Client(url, app_key, app_secret) as client:
    ...     token = client.access_token()          # cached, refreshed early
    ...     headers = client.auth_headers("pageSize=10", b'{"k":"v"}')

Every failure raises a subclass of :class:`EnosError` named after its
status, with ``.service_status`` (the gateway's code, e.g. 1203) and
``.http_status``. One :class:`Client` may be shared by many threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from typing import Callable, Dict, NamedTuple, Optional, Union

__all__ = [
    "Client",
    "Token",
    "EnosError",
    "NullArgumentError",
    "InvalidArgumentError",
    "ConnectError",
    "EnosTimeoutError",
    "TlsError",
    "HttpStatusError",
    "BadResponseError",
    "ServiceError",
    "InternalError",
    "EnosCancelledError",
    "EnosIoError",
    "AsyncClient",
    "get_access_token",
    "refresh_access_token",
    "sign_request",
    "version",
    "load_library",
    "LibraryNotFoundError",
    "LOG_ERROR",
    "LOG_WARN",
    "LOG_INFO",
    "LOG_DEBUG",
    "Response",
]

LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = 1, 2, 3, 4


class Token(NamedTuple):
    """A token and its lifetime in seconds, as the gateway reported them."""

    access_token: str
    expire_s: int


class EnosError(Exception):
    """A failed call. ``status`` is the ``enos_status`` value."""

    status = -1

    def __init__(self, message: str, status: int, status_name: str,
                 service_status: int = 0, http_status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.status_name = status_name
        self.service_status = service_status
        self.http_status = http_status

    def __str__(self) -> str:
        return f"{self.status_name}: {self.message}"


class NullArgumentError(EnosError):
    """ENOS_ERR_NULL_ARGUMENT (1): a required argument was missing."""


class InvalidArgumentError(EnosError):
    """ENOS_ERR_INVALID_ARGUMENT (2): not UTF-8, empty, a bad URL, file or option."""


class ConnectError(EnosError):
    """ENOS_ERR_CONNECT (3): DNS failure, refused, unreachable, reset."""


class EnosTimeoutError(EnosError):
    """ENOS_ERR_TIMEOUT (4): the connect or overall deadline passed. (Not
    named ``TimeoutError``, so as not to shadow the builtin.)"""


class TlsError(EnosError):
    """ENOS_ERR_TLS (5): handshake or certificate verification failed."""


class HttpStatusError(EnosError):
    """ENOS_ERR_HTTP_STATUS (6): a non-2xx answer without a gateway error."""


class BadResponseError(EnosError):
    """ENOS_ERR_BAD_RESPONSE (7): an unusable answer."""


class ServiceError(EnosError):
    """ENOS_ERR_SERVICE (8): the gateway answered a non-zero status (``service_status``)."""


class InternalError(EnosError):
    """ENOS_ERR_INTERNAL (9): a bug in the library."""


class EnosCancelledError(EnosError):
    """ENOS_ERR_CANCELLED (10): a callback (an ``output`` file object's
    ``write``, a ``files`` object's ``read``, ``progress``) stopped the call.
    The exception that stopped it is the ``__cause__``."""


class EnosIoError(EnosError):
    """ENOS_ERR_IO (11): a file to send vanished or changed while sent, or
    the answer could not be written to its ``output`` (a full disk)."""


_ERRORS = {
    1: NullArgumentError,
    2: InvalidArgumentError,
    3: ConnectError,
    4: EnosTimeoutError,
    5: TlsError,
    6: HttpStatusError,
    7: BadResponseError,
    8: ServiceError,
    9: InternalError,
    10: EnosCancelledError,
    11: EnosIoError,
}


class Counters(ctypes.Structure):
    """``enos_client_counters``."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("get_requests", ctypes.c_uint64),
        ("refresh_requests", ctypes.c_uint64),
        ("retries", ctypes.c_uint64),
        ("failures", ctypes.c_uint64),
        ("waits", ctypes.c_uint64),
        ("cache_hits", ctypes.c_uint64),
        ("dns_lookups", ctypes.c_uint64),
        ("api_calls", ctypes.c_uint64),
        ("token_renewals", ctypes.c_uint64),
        ("api_retries", ctypes.c_uint64),
        ("api_retries_denied", ctypes.c_uint64),
    ]


_LOG_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_WRITE_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t)
_READ_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t)
_PROGRESS_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64,
                                      ctypes.c_int64)
_COMPLETION_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)

_libraries: Dict[str, ctypes.CDLL] = {}
_libraries_lock = threading.Lock()


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Declares every function. Owned ``char *`` outputs are ``c_void_p`` so
    that the pointer survives for ``enos_string_free``; only library-owned
    text is returned as ``c_char_p``. The default restype (int) would
    truncate pointers, so every function is declared."""
    c_char_p, c_void_p, c_int, c_size_t = ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    i64, u32, u64, i32 = ctypes.c_int64, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int32
    out_str, out_handle = ctypes.POINTER(c_void_p), ctypes.POINTER(c_void_p)
    signatures = {
        "enos_status_name": ([i32], c_char_p),
        "enos_version": ([], c_char_p),
        "enos_string_free": ([c_void_p], None),
        "enos_last_error_message": ([], c_char_p),
        "enos_last_service_status": ([], i32),
        "enos_last_http_status": ([], i32),
        "enos_get_access_token": ([c_char_p, c_char_p, c_char_p, out_str, ctypes.POINTER(i64)], c_int),
        "enos_refresh_access_token": (
            [c_char_p, c_char_p, c_char_p, c_char_p, out_str, ctypes.POINTER(i64)], c_int),
        "enos_client_builder_new": ([c_char_p, c_char_p, c_char_p, out_handle], c_int),
        "enos_client_builder_set_timeout_ms": ([c_void_p, u64, u64], c_int),
        "enos_client_builder_set_ca_file": ([c_void_p, c_char_p], c_int),
        "enos_client_builder_set_proxy": ([c_void_p, c_char_p], c_int),
        "enos_client_builder_set_refresh_margin_s": ([c_void_p, u32], c_int),
        "enos_client_builder_set_retries": ([c_void_p, u32, u64], c_int),
        "enos_client_builder_set_background_refresh": ([c_void_p, ctypes.c_bool], c_int),
        "enos_client_builder_set_shared_cache": ([c_void_p, c_char_p], c_int),
        "enos_client_builder_set_log_callback": ([c_void_p, _LOG_CALLBACK, c_void_p], c_int),
        "enos_client_build": ([c_void_p, out_handle], c_int),
        "enos_client_builder_free": ([c_void_p], None),
        "enos_client_free": ([c_void_p], None),
        "enos_client_get_token": ([c_void_p, out_str, ctypes.POINTER(i64)], c_int),
        "enos_client_refresh_token": ([c_void_p, c_char_p, out_str, ctypes.POINTER(i64)], c_int),
        "enos_client_access_token": ([c_void_p, out_str], c_int),
        "enos_client_invalidate": ([c_void_p, c_char_p], c_int),
        "enos_client_get_counters": ([c_void_p, ctypes.POINTER(Counters)], c_int),
        "enos_sign_request": ([c_char_p, c_char_p, c_char_p, c_size_t, i64, c_char_p, out_str], c_int),
        "enos_client_auth_headers": ([c_void_p, c_char_p, c_char_p, c_size_t, out_str], c_int),
        "enos_client_builder_set_max_response_bytes": ([c_void_p, c_size_t], c_int),
        "enos_client_request": (
            [c_void_p, c_char_p, c_char_p, c_char_p, c_char_p, c_size_t, out_handle], c_int),
        "enos_response_status": ([c_void_p], i32),
        "enos_response_body": ([c_void_p, ctypes.POINTER(c_size_t)], c_void_p),
        "enos_response_header": ([c_void_p, c_char_p], c_char_p),
        "enos_response_header_at": ([c_void_p, c_size_t, ctypes.POINTER(c_char_p), ctypes.POINTER(c_char_p)],
                                    ctypes.c_bool),
        "enos_response_free": ([c_void_p], None),
        "enos_response_attempts": ([c_void_p], u32),
        "enos_response_request_id": ([c_void_p], c_char_p),
        "enos_request_new": ([c_char_p, c_char_p, out_handle], c_int),
        "enos_request_set_header": ([c_void_p, c_char_p, c_char_p], c_int),
        "enos_request_set_body": ([c_void_p, c_char_p, c_char_p, c_size_t], c_int),
        "enos_request_set_body_file": ([c_void_p, c_char_p, c_char_p], c_int),
        "enos_request_add_part": ([c_void_p, c_char_p, c_char_p, c_char_p, c_size_t], c_int),
        "enos_request_add_file_part": ([c_void_p, c_char_p, c_char_p, c_char_p, c_char_p], c_int),
        "enos_request_add_callback_part": (
            [c_void_p, c_char_p, c_char_p, c_char_p, u64, _READ_CALLBACK, c_void_p], c_int),
        "enos_request_set_output_fd": ([c_void_p, c_int], c_int),
        "enos_request_set_output_callback": ([c_void_p, _WRITE_CALLBACK, c_void_p], c_int),
        "enos_request_set_progress_callback": ([c_void_p, _PROGRESS_CALLBACK, c_void_p], c_int),
        "enos_request_set_timeout_ms": ([c_void_p, u64], c_int),
        "enos_request_free": ([c_void_p], None),
        "enos_client_send": ([c_void_p, c_void_p, out_handle], c_int),
        "enos_client_builder_set_max_concurrent_calls": ([c_void_p, u32], c_int),
        "enos_client_send_async": ([c_void_p, c_void_p, _COMPLETION_CALLBACK, c_void_p, out_handle], c_int),
        "enos_call_fd": ([c_void_p], c_int),
        "enos_call_done": ([c_void_p], ctypes.c_bool),
        "enos_call_wait": ([c_void_p, i64, out_handle], c_int),
        "enos_call_cancel": ([c_void_p], c_int),
        "enos_call_free": ([c_void_p], None),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype
    return lib


class _Headers(dict):
    """Response headers: looked up in any case (``headers["content-type"]``)."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def get(self, name: str, default=None):  # type: ignore[override]
        return super().get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


class Response:
    """An API's answer (any HTTP status): ``status``, ``body`` (bytes; empty
    when it went to an ``output``), ``headers`` (looked up in any case; the
    first value of each), ``attempts`` (sends made: 1, more after a retry, a
    renewed token or a resumed download), ``request_id`` (an EnOS envelope's
    ``requestId``, what support asks for, or None), ``text`` and ``json()``."""

    def __init__(self, status: int, body: bytes, headers: Dict[str, str], attempts: int = 1,
                 request_id: Optional[str] = None) -> None:
        self.status = status
        self.body = body
        self.headers = _Headers(headers)
        self.attempts = attempts
        self.request_id = request_id

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        import json as _json
        return _json.loads(self.body)

    def __repr__(self) -> str:
        return f"Response(status={self.status}, {len(self.body)} bytes)"


class LibraryNotFoundError(OSError):
    """``libenos_token`` could not be loaded; the message names every place tried."""


_HERE = os.path.dirname(os.path.abspath(__file__))


def _candidates(library: Optional[str]) -> list:
    """Where to look, in order, as (description, path)."""
    if library:
        return [("the library argument", library)]
    if os.environ.get("ENOS_TOKEN_LIB"):
        return [("ENOS_TOKEN_LIB", os.environ["ENOS_TOKEN_LIB"])]
    checkout = os.path.normpath(os.path.join(_HERE, "..", "..", "..", "target"))
    places = [("this package", os.path.join(_HERE, "libenos_token.so"))]
    places += [(f"the checkout's target/{profile}", os.path.join(checkout, profile, "libenos_token.so"))
               for profile in ("debug", "release")]
    places.append(("the system loader", ctypes.util.find_library("enos_token") or "libenos_token.so"))
    return places


def load_library(library: Optional[str] = None) -> ctypes.CDLL:
    """The shared library: ``library`` if given, else ``$ENOS_TOKEN_LIB``,
    else the copy in this package, a checkout's ``target/``, or the system
    loader's. Loaded and declared once per path; a failure raises
    :class:`LibraryNotFoundError` naming the places tried."""
    tried = []
    with _libraries_lock:
        for where, path in _candidates(library):
            if path in _libraries:
                return _libraries[path]
            if os.sep in path and not os.path.exists(path):
                tried.append(f"{where} ({path}: no such file)")
                continue
            try:
                _libraries[path] = _declare(ctypes.CDLL(path))
                return _libraries[path]
            except OSError as error:
                tried.append(f"{where} ({error})")
    raise LibraryNotFoundError("cannot load libenos_token; tried " + "; ".join(tried)
                               + ". Install the enos-token wheel, or set ENOS_TOKEN_LIB to the library's path")


def _text(value: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise InvalidArgumentError(f"{what} contains a NUL character", 2, "ENOS_ERR_INVALID_ARGUMENT")
    return value.encode("utf-8")


def _bytes(value: Union[bytes, bytearray, memoryview, str, None]) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def _check(lib: ctypes.CDLL, status: int) -> None:
    """Raises the calling thread's last error for ``status`` (read right away,
    on the thread that failed)."""
    if status == 0:
        return
    message = lib.enos_last_error_message()
    name = lib.enos_status_name(status).decode()
    error = _ERRORS.get(status, EnosError)
    raise error(message.decode("utf-8", "replace") if message else name, status, name,
                lib.enos_last_service_status(), lib.enos_last_http_status())


def _take(lib: ctypes.CDLL, pointer: ctypes.c_void_p) -> str:
    """Copies an owned string and frees it."""
    try:
        return ctypes.string_at(pointer.value).decode("utf-8") if pointer.value else ""
    finally:
        lib.enos_string_free(pointer)


def version(library: Optional[str] = None) -> str:
    """The library's version, e.g. ``"0.1.0"``."""
    return load_library(library).enos_version().decode()


def get_access_token(gateway_url: str, app_key: str, app_secret: str,
                     library: Optional[str] = None) -> Token:
    """One-shot Get Access Token (default options, proxy from the environment)."""
    lib = load_library(library)
    token, expire = ctypes.c_void_p(), ctypes.c_int64()
    status = lib.enos_get_access_token(_text(gateway_url, "gateway_url"), _text(app_key, "app_key"),
                                       _text(app_secret, "app_secret"), ctypes.byref(token),
                                       ctypes.byref(expire))
    text = _take(lib, token)
    _check(lib, status)
    return Token(text, expire.value)


def refresh_access_token(gateway_url: str, app_key: str, app_secret: str, access_token: str,
                         library: Optional[str] = None) -> Token:
    """One-shot Refresh Access Token."""
    lib = load_library(library)
    token, expire = ctypes.c_void_p(), ctypes.c_int64()
    status = lib.enos_refresh_access_token(
        _text(gateway_url, "gateway_url"), _text(app_key, "app_key"), _text(app_secret, "app_secret"),
        _text(access_token, "access_token"), ctypes.byref(token), ctypes.byref(expire))
    text = _take(lib, token)
    _check(lib, status)
    return Token(text, expire.value)


def sign_request(access_token: str, query: str, body: Union[bytes, str, None], timestamp_ms: int,
                 app_secret: str, library: Optional[str] = None) -> str:
    """The ``apim-signature`` of one API call, from explicit inputs."""
    lib = load_library(library)
    data = _bytes(body)
    signature = ctypes.c_void_p()
    status = lib.enos_sign_request(_text(access_token, "access_token"), _text(query or "", "query"),
                                   data, len(data), timestamp_ms, _text(app_secret, "app_secret"),
                                   ctypes.byref(signature))
    text = _take(lib, signature)
    _check(lib, status)
    return text


def _read_response(lib: ctypes.CDLL, response: ctypes.c_void_p) -> Response:
    """Copies an ``enos_response`` into a :class:`Response` (then frees it)."""
    try:
        length = ctypes.c_size_t()
        pointer = lib.enos_response_body(response, ctypes.byref(length))
        content = ctypes.string_at(pointer, length.value) if pointer else b""
        headers: Dict[str, str] = {}
        name, value, index = ctypes.c_char_p(), ctypes.c_char_p(), 0
        while lib.enos_response_header_at(response, index, ctypes.byref(name), ctypes.byref(value)):
            headers.setdefault(name.value.decode("latin-1"), (value.value or b"").decode("utf-8", "replace"))
            index += 1
        request_id = lib.enos_response_request_id(response)
        return Response(lib.enos_response_status(response), content, headers,
                        lib.enos_response_attempts(response),
                        request_id.decode("ascii", "replace") if request_id else None)
    finally:
        lib.enos_response_free(response)


def _file_length(stream) -> Optional[int]:
    """How many bytes are left in a seekable binary stream, or None."""
    try:
        if hasattr(stream, "getbuffer"):  # io.BytesIO
            return len(stream.getbuffer()) - stream.tell()
        here = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(here)
        return end - here
    except (AttributeError, OSError, ValueError):
        return None


class _RequestBuilder:
    """An ``enos_request`` being described, with the callbacks and files it
    needs kept alive until it is freed; an exception raised in a callback is
    kept and re-raised after the call."""

    def __init__(self, lib: ctypes.CDLL, method: str, path: str) -> None:
        self.lib = lib
        self.keep: list = []
        self.opened: list = []
        self.raised: Optional[BaseException] = None
        handle = ctypes.c_void_p()
        _check(lib, lib.enos_request_new(_text(method, "method"), _text(path, "path"), ctypes.byref(handle)))
        self.handle = handle

    def __enter__(self) -> "_RequestBuilder":
        return self

    def __exit__(self, *exc_info) -> None:
        self.free_handle()
        self.release()

    def free_handle(self) -> None:
        """Frees the ``enos_request`` (a call in flight has its own copy)."""
        if self.handle is not None:
            self.lib.enos_request_free(self.handle)
            self.handle = None

    def needs_release(self) -> bool:
        """Whether a call holds callbacks or files of this request."""
        return bool(self.keep or self.opened)

    def release(self) -> None:
        """Lets go of the callbacks and closes the files (the call is over)."""
        for stream in self.opened:
            stream.close()
        self.opened, self.keep = [], []

    def call(self, function: str, *args) -> None:
        _check(self.lib, getattr(self.lib, function)(self.handle, *args))

    def guarded(self, function, failure):
        """``function`` as a callback that never unwinds into C."""
        def callback(*args):
            try:
                return function(*args)
            except BaseException as error:  # noqa: BLE001 - kept, re-raised after the call
                self.raised = self.raised or error
                return failure
        return callback

    def headers(self, headers: Optional[Dict[str, str]]) -> None:
        for name, value in (headers or {}).items():
            self.call("enos_request_set_header", _text(name, "header name"), _text(str(value), f"header {name}"))

    def body(self, data: bytes, content_type: Optional[str]) -> None:
        self.call("enos_request_set_body", None if content_type is None else _text(content_type, "content_type"),
                  data, len(data))

    def fields(self, fields) -> None:
        for name, value in (fields or {}).items():
            content_type = None
            if isinstance(value, tuple):
                value, content_type = value
            data = _bytes(value)
            self.call("enos_request_add_part", _text(name, "field name"),
                      None if content_type is None else _text(content_type, "content_type"), data, len(data))

    def files(self, files) -> None:
        pairs = files.items() if isinstance(files, dict) else (files or [])
        for name, value in pairs:
            for one in (value if isinstance(value, list) else [value]):
                self.file(name, one)

    def file(self, name: str, value) -> None:
        file_name, content_type = None, None
        if isinstance(value, tuple):
            if len(value) not in (2, 3):
                raise InvalidArgumentError(f"file part {name}: a tuple is (filename, path_or_fileobj[, content_type])",
                                           2, "ENOS_ERR_INVALID_ARGUMENT")
            file_name, content_type = value[0], (value[2] if len(value) == 3 else None)
            value = value[1]
        source = value
        if isinstance(value, (str, os.PathLike)):
            self.call("enos_request_add_file_part", _text(name, "part name"),
                      None if file_name is None else _text(file_name, "file name"),
                      None if content_type is None else _text(content_type, "content_type"),
                      _text(os.fspath(value), "file path"))
            return
        if isinstance(source, (bytes, bytearray, memoryview)):
            import io
            source = io.BytesIO(bytes(source))
        length = _file_length(source)
        if length is None:
            raise InvalidArgumentError(f"file part {name}: a path, bytes or a seekable binary file object is needed "
                                       "(its length goes into the part's Content-Length)", 2,
                                       "ENOS_ERR_INVALID_ARGUMENT")
        if file_name is None:
            file_name = os.path.basename(getattr(source, "name", "") or "") or None

        def read(_user, buffer, capacity):
            chunk = source.read(capacity)
            if not isinstance(chunk, (bytes, bytearray)):
                raise TypeError(f"file part {name}: read() must return bytes (open the file in binary mode)")
            ctypes.memmove(buffer, chunk, len(chunk))
            return len(chunk)
        callback = _READ_CALLBACK(self.guarded(read, -1))
        self.keep.append(callback)
        self.call("enos_request_add_callback_part", _text(name, "part name"),
                  None if file_name is None else _text(file_name, "file name"),
                  None if content_type is None else _text(content_type, "content_type"), length, callback, None)

    def output(self, output) -> None:
        if output is None:
            return
        if isinstance(output, (str, os.PathLike)):
            output = open(output, "wb")
            self.opened.append(output)
        try:
            fd = output.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        if fd is not None:
            output.flush()  # what Python buffered goes first
            self.call("enos_request_set_output_fd", fd)
            return

        def write(_user, data, length):
            output.write(ctypes.string_at(data, length))
            return 0
        callback = _WRITE_CALLBACK(self.guarded(write, 1))
        self.keep.append(callback)
        self.call("enos_request_set_output_callback", callback, None)

    def progress(self, report) -> None:
        if report is None:
            return

        def call(_user, sent, send_total, received, receive_total):
            report(sent, send_total, received, None if receive_total < 0 else receive_total)
        callback = _PROGRESS_CALLBACK(self.guarded(call, None))
        self.keep.append(callback)
        self.call("enos_request_set_progress_callback", callback, None)

    def send(self, client_handle: int) -> Response:
        response = ctypes.c_void_p()
        status = self.lib.enos_client_send(client_handle, self.handle, ctypes.byref(response))
        return self.outcome(status, response)

    def outcome(self, status: int, response: ctypes.c_void_p) -> Response:
        """The call's response, or its failure (or a callback's) raised."""
        if status == 0 and self.raised is not None:  # a progress report raised
            self.lib.enos_response_free(response)
            raise self.raised
        try:
            _check(self.lib, status)
        except EnosError as error:
            if self.raised is not None:  # the callback's own exception stopped the call
                raise error from self.raised
            raise
        return _read_response(self.lib, response)


def _describe_request(lib: ctypes.CDLL, method: str, path: str, *, body, json, data, files, fields, headers, output,
                      content_type, progress, timeout) -> _RequestBuilder:
    """The ``enos_request`` of :meth:`Client.request`'s arguments."""
    if json is not None:
        if body is not None or (data is not None and not isinstance(data, dict)):
            raise InvalidArgumentError("give json=, body= or data=, one of them", 2,
                                       "ENOS_ERR_INVALID_ARGUMENT")
        import json as _json
        body = _json.dumps(json, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        content_type = content_type or "application/json;charset=UTF-8"
    if isinstance(data, dict):
        if files is None:
            raise InvalidArgumentError("data= as a dict is for fields with files=; give fields= or json=",
                                       2, "ENOS_ERR_INVALID_ARGUMENT")
        fields = {**data, **(fields or {})}
    elif data is not None:
        if body is not None:
            raise InvalidArgumentError("give body= or data=, not both", 2, "ENOS_ERR_INVALID_ARGUMENT")
        body = data
    request = _RequestBuilder(lib, method, path)
    try:
        request.headers(headers)
        if files is not None or fields is not None:
            if body is not None:
                raise InvalidArgumentError("a body (body=, data=, json=) and files=/fields= are exclusive",
                                           2, "ENOS_ERR_INVALID_ARGUMENT")
            request.fields(fields)
            request.files(files)
        elif body is not None:
            request.body(_bytes(body), content_type)
        request.output(output)
        request.progress(progress)
        if timeout is not None:
            request.call("enos_request_set_timeout_ms", max(1, int(timeout * 1000)))
    except BaseException:
        request.free_handle()
        request.release()
        raise
    return request



class Client:
    """A reusable, thread-safe client for one gateway and one application.

    Use it as a context manager, or call :meth:`close`. ``close`` waits for
    calls running on other threads; calls after it raise ``NullArgumentError``.
    """

    def __init__(self, gateway_url: str, app_key: str, app_secret: str, *,
                 connect_timeout_ms: Optional[int] = None, total_timeout_ms: Optional[int] = None,
                 ca_file: Optional[str] = None, proxy: Optional[str] = None,
                 refresh_margin_s: Optional[int] = None,
                 retries: Optional[tuple] = None,
                 background_refresh: bool = False,
                 shared_cache: Optional[str] = None,
                 max_response_bytes: Optional[int] = None,
                 max_concurrent_calls: Optional[int] = None,
                 log: Optional[Callable[[int, str], None]] = None,
                 library: Optional[str] = None) -> None:
        """Options as in ``enos_token.h``: timeouts default to 10000/30000 ms,
        ``proxy=""`` turns proxies off (default: the environment), ``retries``
        is ``(max_retries, base_backoff_ms)``, ``background_refresh`` refreshes
        due tokens on a thread of the client, ``shared_cache`` is a directory
        through which processes share one token, ``max_concurrent_calls`` caps
        the calls of an :class:`AsyncClient` in flight (default 64, more are
        queued), ``log(level, message)`` is called from any thread that uses
        the client (exceptions in it are ignored)."""
        self._lib = load_library(library)
        self._handle: Optional[int] = None
        self._calls = 0
        self._idle = threading.Condition()
        self._log_callback = None
        lib = self._lib
        builder = ctypes.c_void_p()
        _check(lib, lib.enos_client_builder_new(_text(gateway_url, "gateway_url"), _text(app_key, "app_key"),
                                                _text(app_secret, "app_secret"), ctypes.byref(builder)))
        try:
            if connect_timeout_ms is not None or total_timeout_ms is not None:
                _check(lib, lib.enos_client_builder_set_timeout_ms(
                    builder, connect_timeout_ms if connect_timeout_ms is not None else 10000,
                    total_timeout_ms if total_timeout_ms is not None else 30000))
            if ca_file is not None:
                _check(lib, lib.enos_client_builder_set_ca_file(builder, _text(ca_file, "ca_file")))
            if proxy is not None:
                _check(lib, lib.enos_client_builder_set_proxy(builder, _text(proxy, "proxy")))
            if refresh_margin_s is not None:
                _check(lib, lib.enos_client_builder_set_refresh_margin_s(builder, refresh_margin_s))
            if retries is not None:
                _check(lib, lib.enos_client_builder_set_retries(builder, retries[0], retries[1]))
            if background_refresh:
                _check(lib, lib.enos_client_builder_set_background_refresh(builder, True))
            if shared_cache is not None:
                _check(lib, lib.enos_client_builder_set_shared_cache(builder, _text(shared_cache, "shared_cache")))
            if max_response_bytes is not None:
                _check(lib, lib.enos_client_builder_set_max_response_bytes(builder, max_response_bytes))
            if max_concurrent_calls is not None:
                _check(lib, lib.enos_client_builder_set_max_concurrent_calls(builder, max_concurrent_calls))
            if log is not None:
                def trampoline(level: int, message: bytes, _user: Optional[int]) -> None:
                    try:
                        log(level, message.decode("utf-8", "replace"))
                    except Exception:  # noqa: BLE001 - never unwind into C
                        pass
                self._log_callback = _LOG_CALLBACK(trampoline)  # kept alive with the client
                _check(lib, lib.enos_client_builder_set_log_callback(builder, self._log_callback, None))
        except BaseException:
            lib.enos_client_builder_free(builder)
            raise
        client = ctypes.c_void_p()
        _check(lib, lib.enos_client_build(builder, ctypes.byref(client)))  # consumes the builder
        self._handle = client.value

    def _enter(self) -> int:
        with self._idle:
            if self._handle is None:
                raise NullArgumentError("client is closed", 1, "ENOS_ERR_NULL_ARGUMENT")
            self._calls += 1
            return self._handle

    def _leave(self) -> None:
        with self._idle:
            self._calls -= 1
            if self._calls == 0:
                self._idle.notify_all()

    def _token_call(self, function, *args) -> Token:
        handle = self._enter()
        try:
            token, expire = ctypes.c_void_p(), ctypes.c_int64()
            status = function(handle, *args, ctypes.byref(token), ctypes.byref(expire))
            text = _take(self._lib, token)
            _check(self._lib, status)
            return Token(text, expire.value)
        finally:
            self._leave()

    def get_token(self) -> Token:
        """Get Access Token (always a request; also becomes the managed token)."""
        return self._token_call(self._lib.enos_client_get_token)

    def refresh_token(self, access_token: str) -> Token:
        """Refresh Access Token (always a request; also becomes the managed token)."""
        return self._token_call(self._lib.enos_client_refresh_token, _text(access_token, "access_token"))

    def access_token(self) -> str:
        """A token valid now: cached, refreshed early, one fetch for all threads."""
        handle = self._enter()
        try:
            token = ctypes.c_void_p()
            status = self._lib.enos_client_access_token(handle, ctypes.byref(token))
            text = _take(self._lib, token)
            _check(self._lib, status)
            return text
        finally:
            self._leave()

    def invalidate(self, rejected_token: Optional[str] = None) -> None:
        """An API call rejected ``rejected_token``: forget it if still cached
        (``None`` forgets any)."""
        handle = self._enter()
        try:
            token = None if rejected_token is None else _text(rejected_token, "rejected_token")
            _check(self._lib, self._lib.enos_client_invalidate(handle, token))
        finally:
            self._leave()

    def auth_headers(self, query: str = "", body: Union[bytes, str, None] = None) -> Dict[str, str]:
        """The ``apim-*`` headers for an API call with exactly this query and body."""
        handle = self._enter()
        try:
            data = _bytes(body)
            headers = ctypes.c_void_p()
            status = self._lib.enos_client_auth_headers(handle, _text(query or "", "query"), data, len(data),
                                                        ctypes.byref(headers))
            text = _take(self._lib, headers)
            _check(self._lib, status)
        finally:
            self._leave()
        pairs = (line.split(": ", 1) for line in text.split("\r\n") if line)
        return {name: value for name, value in pairs}

    def request(self, method: str, path: str, *, body: Union[bytes, str, None] = None, json=None,
                data=None, files=None, fields=None, headers: Optional[Dict[str, str]] = None,
                output=None, content_type: Optional[str] = None,
                progress: Optional[Callable[[int, int, int, Optional[int]], None]] = None,
                timeout: Optional[float] = None) -> Response:
        """Calls an API: ``method`` on ``path`` (path and query relative to the
        gateway URL), signed with the managed token over exactly the query sent
        (and the body, when it is JSON); a refused token is renewed and the call
        sent once more. Any HTTP status is returned; failures raise.

        - ``json=``: a value, serialised once (compactly, UTF-8) and sent as
          ``application/json``. ``body=`` or ``data=``: bytes or text sent as
          given (``content_type`` defaults to JSON). At most one of them.
        - ``files=``: ``multipart/form-data`` file parts, as ``requests`` takes
          them: ``{"enos-file": path}`` or ``{"enos-file": (filename,
          path_or_fileobj[, content_type])}``, a list of such values for several
          parts of one name, or a list of ``(name, value)`` pairs. Paths are
          streamed from disk; file objects are read as the call is sent.
        - ``fields=``: plain multipart fields, ``{"enos-message": text}`` or
          ``{"enos-message": (text_or_bytes, content_type)}`` (``data=`` as a
          dict, with ``files=``, does the same).
        - ``headers=``: other headers (``Accept``, ``Range``, ...).
        - ``output=``: a path or a binary file object the answer's body is
          written to as it arrives (the response's ``body`` is then empty); a
          GET resumes by itself if the connection breaks mid-body.
        - ``progress(sent, send_total, received, receive_total)``: at most every
          100 ms and once at the end (``receive_total`` None when unknown).
        - ``timeout``: seconds for the whole call, a streamed transfer included.
        """
        request = _describe_request(self._lib, method, path, body=body, json=json, data=data, files=files,
                                    fields=fields, headers=headers, output=output, content_type=content_type,
                                    progress=progress, timeout=timeout)
        with request:
            handle = self._enter()
            try:
                return request.send(handle)
            finally:
                self._leave()

    def counters(self) -> Dict[str, int]:
        """What the client has done: requests, retries, failures, waits, cache hits, DNS lookups."""
        handle = self._enter()
        try:
            counters = Counters(struct_size=ctypes.sizeof(Counters))
            _check(self._lib, self._lib.enos_client_get_counters(handle, ctypes.byref(counters)))
            return {name: getattr(counters, name) for name, _ in Counters._fields_[1:]}
        finally:
            self._leave()

    def close(self) -> None:
        """Frees the client once no call on it is running. Idempotent."""
        with self._idle:
            handle, self._handle = self._handle, None
            while self._calls:
                self._idle.wait()
        if handle is not None:
            self._lib.enos_client_free(handle)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


from ._calls_in_flight import AsyncClient  # noqa: E402 - it builds on the classes above

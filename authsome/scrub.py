"""What comes back from a routed host never holds a real credential.

APIs echo what they were sent (a debugging endpoint that returns the request
headers, an error that quotes the token, a pagination link that repeats the
query string). Every occurrence of a secret in a response is replaced with
the placeholder: in header values (`text`), in whole bodies (`Scrubber.all`)
and in streamed bodies (`Scrubber.feed`), where a secret may be split across
chunks. A stream holds back only a tail that could still be the start of a
secret (see `Scrubber.HOLD`), so server-sent events and downloads keep
arriving as they are sent.

Encoded bodies (gzip, deflate, br, zstd) are decoded on the way through
(`Decoder`), since a secret cannot be found in compressed bytes; the
response then travels unencoded.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Iterable

from authsome.models import PLACEHOLDER

DECODABLE = ("gzip", "x-gzip", "deflate", "br", "zstd")


@functools.lru_cache(maxsize=64)
def _pattern(needles: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """One compiled alternation per set of secrets (a run has few): built once, not per response."""
    return re.compile(b"|".join(re.escape(n) for n in needles))


class Scrubber:
    # A chunk whose end could begin a secret is held back only from this many
    # characters on; a shorter partial match is passed on, and the rest of the
    # secret is replaced at the start of the next chunk. So a stream whose chunk
    # happens to end like a secret's first letters never stalls waiting for more.
    HOLD = 8

    def __init__(self, secrets: Iterable[str], replacement: str = PLACEHOLDER):
        needles = tuple(sorted({s.encode() for s in secrets if s}, key=len, reverse=True))
        self._needles = needles
        self._pattern = _pattern(needles) if needles else None
        self._replacement = replacement.encode()
        self._held = b""
        self._pending: list[tuple[bytes, int]] = []  # (secret, k): the last output ended with secret[:k]

    def __bool__(self) -> bool:
        return self._pattern is not None

    def all(self, data: bytes) -> bytes:
        return self._pattern.sub(self._replacement, data) if self._pattern and data else data

    def text(self, value: str) -> str:
        if not self._pattern:
            return value
        return self.all(value.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")

    def feed(self, data: bytes) -> bytes:
        """The next chunk, scrubbed; b"" ends the stream and releases what was held back."""
        if not self._pattern:
            return data
        if not data:
            held, self._held, self._pending = self._held, b"", []
            return held
        buf, self._held, head = self._held + data, b"", b""
        for secret, k in self._pending:
            rest = secret[k:]
            if buf.startswith(rest):
                head, buf = self._replacement, buf[len(rest):]
                break
            if rest.startswith(buf):
                self._held = buf  # still inside that secret: wait for the rest of it
                return b""
        self._pending = []
        buf = self.all(buf)
        tail = self._partial_tail(buf)
        if tail >= self.HOLD:
            self._held, buf = buf[-tail:], buf[:-tail]
        elif tail:
            self._pending = [(n, k) for n in self._needles for k in range(1, tail + 1) if buf.endswith(n[:k])]
        return head + buf

    def _partial_tail(self, buf: bytes) -> int:
        """The length of the longest end of `buf` that begins some secret (shorter than it)."""
        for k in range(min(len(self._needles[0]) - 1, len(buf)), 0, -1):
            tail = buf[-k:]
            if any(len(n) > k and n.startswith(tail) for n in self._needles):
                return k
        return 0


class Decoder:
    """Incremental decoding of one Content-Encoding; `feed(b"")` flushes.

    Strict where clients are lenient in different ways: a gzip body of several
    members is decoded whole (as gunzip and urllib3 do), and bytes after the
    end of any other stream are refused (ValueError), so what is searched is
    what any client would read.
    """

    def __init__(self, encoding: str):
        encoding = encoding.strip().lower()
        if encoding not in DECODABLE:
            raise ValueError(encoding)
        self._encoding = encoding
        self._done = False
        if encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = None  # zlib-wrapped or raw: decided by the first bytes
            self._first = b""
        elif encoding == "br":
            import brotli

            self._br = brotli.Decompressor()
        else:
            try:
                from compression import zstd
            except ImportError:  # Python < 3.14: the backport mitmproxy depends on
                from backports import zstd

            self._zstd = zstd.ZstdDecompressor()

    def feed(self, data: bytes) -> bytes:
        try:
            return self._feed(data)
        except ValueError:
            raise
        except Exception as exc:  # zlib.error, brotli.error, ZstdError
            raise ValueError(f"{self._encoding} body is damaged: {type(exc).__name__}") from None

    def _feed(self, data: bytes) -> bytes:
        if self._encoding == "br":
            if not data:
                if not self._br.is_finished():
                    raise ValueError("br body ends early")
                return b""
            return self._br.process(data)
        if self._encoding == "zstd":
            if not data:
                return b""
            if self._zstd.eof and data:
                raise ValueError("data after the end of the zstd body")
            out = self._zstd.decompress(data)
            if self._zstd.eof and self._zstd.unused_data:
                raise ValueError("data after the end of the zstd body")
            return out
        if self._encoding == "deflate" and self._z is None:
            self._first += data
            if len(self._first) < 2 and data:
                return b""
            wrapped = len(self._first) >= 2 and (self._first[0] & 0x0F) == 8 and int.from_bytes(self._first[:2], "big") % 31 == 0
            self._z = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            data, self._first = self._first, b""
        if not data:
            return self._z.flush()
        out = b""
        while data:
            if self._z.eof:
                if self._encoding == "deflate":
                    raise ValueError("data after the end of the deflate body")
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)  # the next gzip member
            out += self._z.decompress(data)
            data = self._z.unused_data if self._z.eof else b""
        return out


def decode_all(data: bytes, encodings: list[str]) -> bytes:
    """A whole body decoded through `encodings` (as listed in Content-Encoding, applied in order)."""
    for encoding in reversed(encodings):
        decoder = Decoder(encoding)
        data = decoder.feed(data) + decoder.feed(b"")
    return data


def codings(value: str) -> list[str]:
    """The encodings a Content-Encoding header lists, without `identity`."""
    return [c.strip().lower() for c in value.split(",") if c.strip() and c.strip().lower() != "identity"]

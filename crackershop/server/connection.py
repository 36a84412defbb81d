"""What every HTTP connection of a serving process obeys, in every mode (one
process, or each worker of a cluster): the limits on a request's head, the
deadline for a request to arrive, and whether the process is draining.

One :class:`ConnectionLimits` is made per site and handed to each of its
channels. A cluster worker watches its connections (to drain them and to
report them) through :class:`IConnectionWatcher` on that same object: it
hooks into the site's channel and never replaces it, so the limits and the
JSON error answers are the same whatever the mode.
"""

from __future__ import annotations

from typing import Any, Optional

import attr
from zope.interface import Interface


class IConnectionWatcher(Interface):
    """Told about every connection of a site, by the site's channel."""

    def opened(channel: Any) -> None:
        """A connection was made."""

    def received(channel: Any) -> None:
        """Bytes arrived on it."""

    def answered(channel: Any) -> None:
        """A response on it was finished."""

    def closed(channel: Any) -> None:
        """It was lost."""


@attr.s(auto_attribs=True, eq=False)
class ConnectionLimits:
    """The limits of one site's connections, and its drain flag."""

    # most header lines, and bytes of request line plus headers (more is a 431)
    max_headers: int = 100
    max_headers_size: int = 16 * 1024
    # a request (line, headers and body) must arrive whole within this from
    # its first byte, however slowly it trickles in (408 after); None: no limit
    arrival_timeout: Optional[float] = None
    # while set, every response ends its connection (Connection: close)
    draining: bool = False
    watcher: Optional[IConnectionWatcher] = None

    @classmethod
    def from_config(cls, config: Any) -> ConnectionLimits:
        return cls(
            max_headers=config.max_headers,
            max_headers_size=config.max_headers_size,
            arrival_timeout=config.request_timeout,
        )

"""An order's states and the moves between them.

An order is placed ``Requested`` and moves forward along its life
(``Processing``, ``Shipped``, ``Out for Delivery``, ``Delivered``; steps may be
skipped), or is ``Cancelled`` from any state before ``Delivered``. Two more
states are never shown to anyone: ``Reserving`` (inserted, its stock being
reserved: not yet an order) and ``Failed`` (its placement failed and its
reservations are given back; it expires).

The states are strings in the database; :class:`State` members are those
strings (``State.REQUESTED == "Requested"``).
"""

from __future__ import annotations

from enum import Enum

from crackershop.errors import Conflict


class State(str, Enum):
    RESERVING = "Reserving"
    FAILED = "Failed"
    REQUESTED = "Requested"
    PROCESSING = "Processing"
    SHIPPED = "Shipped"
    OUT_FOR_DELIVERY = "Out for Delivery"
    DELIVERED = "Delivered"
    CANCELLED = "Cancelled"

    def __str__(self) -> str:
        # the stored text, in every Python version's str() and format()
        return str(self.value)


RESERVING = State.RESERVING
FAILED = State.FAILED
REQUESTED = State.REQUESTED
DELIVERED = State.DELIVERED
CANCELLED = State.CANCELLED
# Placements not (or no longer) orders: listed for no one.
HIDDEN = (RESERVING, FAILED)
# A placed order's life, in order.
LIFE = (REQUESTED, State.PROCESSING, State.SHIPPED, State.OUT_FOR_DELIVERY, DELIVERED)
# What an admin can see and filter by.
STATUSES = (*LIFE, CANCELLED)


class InvalidTransition(Conflict):
    code = "invalid_transition"


def allowed(current: str, new: str) -> bool:
    """Forward along the order's life (steps may be skipped); Cancelled from
    any state before Delivered; nothing out of Delivered or Cancelled."""
    if current not in LIFE or current == DELIVERED:
        return False
    if new == CANCELLED:
        return True
    return new in LIFE and LIFE.index(new) > LIFE.index(current)  # type: ignore[arg-type]

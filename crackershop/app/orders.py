"""/api/v1/orders: placing orders that never oversell, exactly once, and
their life afterwards."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Optional, Union

from bson import ObjectId
from pydantic import Field, model_validator
from twisted.internet.interfaces import IReactorTime

from crackershop.app.http import dumps
from crackershop.app.models import Body, ObjectIdText
from crackershop.app.notify import Notifier
from crackershop.app.pricing import Line, minimum_order, price_order, subtotal
from crackershop.app.queries import page_args
from crackershop.app.responses import Id, Listing, Paginated, Shape, Success, id_field
from crackershop.app.routing import Call, Reply, Route, ok, paginated
from crackershop.app.views import OrderViews, order_ref, public_order
from crackershop.clock import now_utc
from crackershop.errors import NotFound, ValidationFailed
from crackershop.orders.idempotency import (
    HEADER,
    MAX_KEY,
    Idempotency,
    Replies,
    body_hash,
    read_key,
)
from crackershop.orders.placing import Reservations
from crackershop.orders.states import (
    CANCELLED,
    DELIVERED,
    HIDDEN,
    STATUSES,
    InvalidTransition,
    allowed,
)
from crackershop.store.interfaces import Document, IStore

OrderStatus = Literal[
    "Requested", "Processing", "Shipped", "Out for Delivery", "Delivered", "Cancelled"
]
MAX_QTY = 10_000

Short = Annotated[str, Field(max_length=100)]


class OrderLineBody(Body):
    # the app sends each line's name, image and (list) price from its cart
    ignored = {"name": str, "image": str, "price": float}

    product: ObjectIdText
    qty: Annotated[int, Field(ge=1, le=MAX_QTY)]


class ShippingAddressBody(Body):
    address: Annotated[str, Field(min_length=1, max_length=300)]
    label: Optional[Annotated[str, Field(max_length=50)]] = None
    name: Optional[Short] = None
    mobileNumber: Optional[Annotated[str, Field(max_length=20)]] = None
    phone: Optional[Annotated[str, Field(max_length=20)]] = None
    city: Optional[Short] = None
    district: Optional[Short] = None
    state: Optional[Short] = None
    pincode: Optional[Annotated[str, Field(max_length=12)]] = None
    postalCode: Optional[Annotated[str, Field(max_length=12)]] = None
    country: Optional[Short] = None
    landmark: Optional[Annotated[str, Field(max_length=200)]] = None


# what the app sends: "<address>\nPhone: <mobile>"
AddressText = Annotated[str, Field(min_length=1, max_length=1000)]


class OrderBody(Body):
    # the app's own figures for the cart; the server computes every one
    ignored = dict.fromkeys(
        ("itemsPrice", "discountPrice", "shippingPrice", "otherFees", "taxPrice", "totalPrice"),
        float,
    )

    orderItems: Annotated[list[OrderLineBody], Field(min_length=1)]
    shippingAddress: Union[AddressText, ShippingAddressBody]
    paymentMethod: Annotated[str, Field(min_length=1, max_length=50)]


class StatusBody(Body):
    """``{status}`` as the app sends it, or ``{orderStatus}``."""

    status: Optional[OrderStatus] = None
    orderStatus: Optional[OrderStatus] = None

    @model_validator(mode="after")
    def _one(self) -> StatusBody:
        if self.status is None and self.orderStatus is None:
            raise ValueError("The new status is required")
        if self.status and self.orderStatus and self.status != self.orderStatus:
            raise ValueError("status and orderStatus disagree; send one")
        return self

    @property
    def new(self) -> str:
        new = self.status or self.orderStatus
        assert new is not None
        return new


PaymentValue = Union[Annotated[str, Field(max_length=500)], bool, int, float, None]


class PaymentBody(Body):
    isPaid: bool
    paymentResult: Optional[
        Annotated[dict[Annotated[str, Field(max_length=64)], PaymentValue], Field(max_length=20)]
    ] = None


class OrderLine(Shape):
    product: Id
    name: str
    qty: int
    price: float = Field(description="The undiscounted unit price when the order was placed")
    image: str


class OrderOwner(Shape):
    """The customer, as the order screens show them."""

    id: Id = id_field()
    name: str
    email: str
    mobileNumber: Optional[str] = None
    address: Optional[str] = None
    district: Optional[str] = None
    state: Optional[str] = None
    pincode: Optional[str] = None


class Order(Shape):
    """An order; ``totalPrice = itemsPrice - discountPrice + shippingPrice +
    otherFees + taxPrice``, every figure computed by the server."""

    id: Id = id_field()
    user: Union[OrderOwner, Id] = Field(description="The customer, or their id once deleted")
    orderItems: list[OrderLine]
    shippingAddress: str = Field(description="As sent; an address object written on one line")
    paymentMethod: str
    paymentResult: Optional[dict[str, PaymentValue]]
    itemsPrice: float
    discountPrice: float
    shippingPrice: float
    otherFees: float
    taxPrice: float
    totalPrice: float
    orderStatus: OrderStatus
    isPaid: bool
    paidAt: Optional[datetime]
    isDelivered: bool
    deliveredAt: Optional[datetime]
    createdAt: datetime
    updatedAt: datetime


class OrderHandlers:
    def __init__(
        self,
        store: IStore,
        clock: IReactorTime,
        notifier: Notifier,
        max_lines: int = 50,
        repair_after: float = 60.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.notifier = notifier
        self.max_lines = max_lines
        self.reservations = Reservations(store, clock, repair_after)
        self.views = OrderViews(store)
        self.idempotency = Idempotency(
            store, clock, repair_after, Replies(Reply, dumps, self._replay)
        )

    def routes(self) -> list[Route]:
        o = "/api/v1/orders"
        return [
            Route(
                "POST",
                o,
                self.create,
                "Place an order (optional Idempotency-Key header)",
                operation="createOrder",
                access="user",
                body=OrderBody,
                headers={
                    HEADER: f"Up to {MAX_KEY} characters: a retry with the same key and body "
                    "answers with the order the first placed, never a second order"
                },
                response=Success[Order],
                success=(201,),
                tag="orders",
            ),
            Route(
                "GET",
                f"{o}/myorders",
                self.mine,
                "My orders",
                operation="listMyOrders",
                access="user",
                response=Listing[Order],
                tag="orders",
            ),
            Route(
                "GET",
                o,
                self.list_all,
                "All orders",
                operation="listOrders",
                access="admin",
                query=("page", "limit", "status"),
                response=Paginated[Order],
                tag="orders",
            ),
            Route(
                "GET",
                f"{o}/{{id}}",
                self.get,
                "One order",
                operation="getOrder",
                access="user",
                response=Success[Order],
                tag="orders",
            ),
            Route(
                "PUT",
                f"{o}/{{id}}/status",
                self.set_status,
                "Move an order along its life",
                operation="updateOrderStatus",
                access="admin",
                body=StatusBody,
                response=Success[Order],
                tag="orders",
            ),
            Route(
                "PUT",
                f"{o}/{{id}}/payment",
                self.set_payment,
                "Record payment",
                operation="updateOrderPayment",
                access="admin",
                body=PaymentBody,
                response=Success[Order],
                tag="orders",
            ),
        ]

    # -- placing

    def _check_lines(self, body: OrderBody) -> None:
        if len(body.orderItems) > self.max_lines:
            raise ValidationFailed(
                "Too many order lines", {"orderItems": f"at most {self.max_lines} lines"}
            )
        seen: dict[str, int] = {}
        details: dict[str, str] = {}
        for i, line in enumerate(body.orderItems):
            product = line.product.lower()
            if product in seen:
                details[f"orderItems.{i}.product"] = (
                    f"same product as orderItems.{seen[product]}; combine the quantities"
                )
            seen.setdefault(product, i)
        if details:
            raise ValidationFailed("Duplicate order lines", details)

    async def create(self, call: Call) -> Reply:
        body: OrderBody = call.body
        user = call.require_user()
        self._check_lines(body)
        key = read_key(call.request.getHeader(HEADER.encode()))
        order_id = ObjectId()
        if key is None:
            return await self._place(user, body, order_id)
        digest = body_hash(body.model_dump(mode="json"))
        return await self.idempotency.run(
            user["_id"], key, digest, order_id, lambda: self._place(user, body, order_id)
        )

    async def _place(self, user: Document, body: OrderBody, order_id: ObjectId) -> Reply:
        ids = [ObjectId(line.product) for line in body.orderItems]
        found = {p["_id"]: p for p in await self.store.stock.by_ids(ids)}
        details: dict[str, str] = {}
        for i, product_id in enumerate(ids):
            product = found.get(product_id)
            if product is None:
                details[f"orderItems.{i}.product"] = "no such product"
            elif product.get("status", "Active") == "Inactive":
                details[f"orderItems.{i}.product"] = "this product is not available"
        if details:
            raise ValidationFailed("Some products cannot be ordered", details)
        settings = await self.store.settings.get()
        lines = [Line(found[pid], line.qty) for pid, line in zip(ids, body.orderItems)]
        totals = price_order(lines, settings)
        minimum = minimum_order(settings)
        if subtotal(totals) < minimum:
            raise ValidationFailed(
                f"The minimum order amount is {minimum}",
                {"itemsPrice": f"{subtotal(totals)} is below the minimum of {minimum}"},
            )
        now = now_utc(self.clock)
        order = {
            "_id": order_id,
            "user": user["_id"],
            "orderItems": totals.items,
            "shippingAddress": (
                body.shippingAddress
                if isinstance(body.shippingAddress, str)
                else body.shippingAddress.model_dump(exclude_none=True)
            ),
            "paymentMethod": body.paymentMethod,
            "paymentResult": None,
            **totals.as_fields(),
            "isPaid": False,
            "paidAt": None,
            "isDelivered": False,
            "deliveredAt": None,
            "createdAt": now,
            "updatedAt": now,
        }
        placed = await self.reservations.place(order, found)
        # Placed: from here nothing may turn the answer into an error (it
        # would free the Idempotency-Key of a placed order), so the answer is
        # built from what is in hand, with no further read.
        await self._announce(placed)
        return ok(public_order(placed, {user["_id"]: user}), 201)

    async def _announce(self, order: Document) -> None:
        """Tell the customer the order is placed, and every admin of it."""
        ref = order_ref(order)
        total = order.get("totalPrice")
        await self.notifier.notify(
            order["user"],
            "Order placed",
            f"Your order {ref} for {total} is placed; we will let you know as it moves.",
            "order",
            {"orderId": str(order["_id"]), "orderStatus": order.get("orderStatus")},
        )
        self.notifier.broadcast(
            "admin",
            "New order",
            f"Order {ref} for {total} was just placed.",
            "order",
            {"orderId": str(order["_id"])},
        )

    async def _replay(self, order_id: ObjectId) -> Optional[Reply]:
        order = await self.store.orders.get(order_id)
        return ok(await self.views.one(order), 201) if order is not None else None

    # -- reading

    async def _visible(self, call: Call) -> Document:
        order = await self.store.orders.get(call.object_id("id", "Order"))
        if (
            order is None
            or order.get("orderStatus") in HIDDEN
            or not (call.is_admin or order.get("user") == call.require_user()["_id"])
        ):
            raise NotFound("Order not found")
        return order

    async def mine(self, call: Call) -> Reply:
        orders = await self.store.orders.for_user(call.require_user()["_id"])
        return ok(await self.views.many(orders), count=len(orders))

    async def get(self, call: Call) -> Reply:
        return ok(await self.views.one(await self._visible(call)))

    async def list_all(self, call: Call) -> Reply:
        paging = page_args(call.args)
        status = call.args.get("status") or None
        if status is not None and status not in STATUSES:
            raise ValidationFailed(
                "Invalid query", {"status": "must be one of " + ", ".join(STATUSES)}
            )
        page = await self.store.orders.list(paging["page"], paging["limit"], status)
        items = await self.views.many(page.items)
        return paginated(items, page.total, paging["page"], paging["limit"])

    # -- changing

    async def set_status(self, call: Call) -> Reply:
        body: StatusBody = call.body
        order = await self._visible(call)
        current, new = order["orderStatus"], body.new
        if not allowed(current, new):
            raise InvalidTransition(
                f"An order cannot go from {current} to {new}",
                {"orderStatus": f"not allowed from {current}"},
            )
        if new == CANCELLED:
            changed = await self.reservations.cancel(order, current)
        else:
            changes: dict[str, Any] = {"orderStatus": new}
            if new == DELIVERED:
                changes.update(isDelivered=True, deliveredAt=now_utc(self.clock))
            changed = await self.store.orders.transition(order["_id"], current, changes)
        if not changed:
            raise InvalidTransition(
                "The order was changed by someone else; reload it and try again",
                {"orderStatus": "changed concurrently"},
            )
        updated = await self.store.orders.get(order["_id"])
        assert updated is not None
        await self.notifier.notify(
            order["user"],
            f"Order {new.lower()}",
            f"Your order {order_ref(order)} is now {new}.",
            "order",
            {"orderId": str(order["_id"]), "orderStatus": new},
        )
        return ok(await self.views.one(updated))

    async def set_payment(self, call: Call) -> Reply:
        body: PaymentBody = call.body
        order = await self._visible(call)
        paid_at = order.get("paidAt") if order.get("isPaid") else None
        changes: dict[str, Any] = {
            "isPaid": body.isPaid,
            "paidAt": (paid_at or now_utc(self.clock)) if body.isPaid else None,
        }
        if body.paymentResult is not None:
            changes["paymentResult"] = body.paymentResult
        updated = await self.store.orders.update(order["_id"], changes)
        if updated is None:
            raise NotFound("Order not found")
        if body.isPaid and not order.get("isPaid"):
            await self.notifier.notify(
                order["user"],
                "Payment confirmed",
                f"We have received the payment for your order {order_ref(order)}.",
                "order",
                {"orderId": str(order["_id"]), "isPaid": True},
            )
        return ok(await self.views.one(updated))

"""What the routes answer: the JSON of each response, as models.

Each route names its success model (``Route.response``); the OpenAPI
document is generated from these models, and the tests check every answer
the app gives against them (crackershop.app.conformance), so a field the
server renders and the document do not drift apart. The models describe
the rendered JSON: ids are 24 hexadecimal characters, times ISO 8601 text.

Fields a rendered document always carries are required; fields that only
some documents have default to None. The models refuse fields they do not
declare, so that a test notices one the server started to send; the
published document leaves objects open (a shop's database may hold fields
of an older backend, and clients ignore what they do not know).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, Optional, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

T = TypeVar("T")

Id = Annotated[str, Field(pattern=r"^[0-9a-f]{24}$", description="A document id")]
Timestamp = datetime
Money = float


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


def id_field(description: str = "The document's id") -> Any:
    """The ``_id`` field (pydantic keeps leading underscores private)."""
    return Field(alias="_id", description=description)


# -- envelopes


class Success(Shape, Generic[T]):
    """``{success: true, data}``."""

    success: Literal[True]
    data: T


class Listing(Shape, Generic[T]):
    """A whole list: ``{success: true, count, data: [...]}``."""

    success: Literal[True]
    count: int
    data: list[T]


class Paginated(Shape, Generic[T]):
    """One page of a list: ``{success, count, total, pages, currentPage, data}``."""

    success: Literal[True]
    count: int = Field(description="Items on this page")
    total: int = Field(description="Items on every page")
    pages: int
    currentPage: int
    data: list[T]


class Error(Shape):
    """Every error: the human reason in ``error``, a stable ``code``, and
    per-field problems in ``details`` when there are any."""

    success: Literal[False]
    error: str
    code: str
    # absent when there is nothing to add; never null
    details: Union[dict[str, str], SkipJsonSchema[None]] = None


# -- accounts


class Address(Shape):
    id: Id = id_field()
    label: str
    address: str
    pincode: str
    district: str
    state: str
    isDefault: bool


class User(Shape):
    """An account, never with its password hash or tokens. The profile's
    text fields are "" when not filled in."""

    id: Id = id_field()
    name: str
    email: str
    role: Literal["customer", "admin"]
    status: Literal["Active", "Blocked", "Inactive"]
    avatar: str
    mobileNumber: str
    address: str
    pincode: str
    district: str
    state: str
    addresses: list[Address]
    emailVerified: Optional[bool] = None
    googleId: Optional[str] = None
    # absent on accounts carried over from the old backend without them
    createdAt: Optional[Timestamp] = None
    updatedAt: Optional[Timestamp] = None


class Session(Shape):
    """A signed-in user and their bearer token."""

    success: Literal[True]
    token: str = Field(description="Send as `Authorization: Bearer <token>`")
    data: User


# -- catalogue


class CategoryRef(Shape):
    id: Id = id_field()
    name: str


ProductStatus = Literal["Active", "Inactive", "Out of Stock"]


class Product(Shape):
    id: Id = id_field()
    name: str
    price: Money
    discountPrice: Money = Field(description="The selling price when above 0 and below price")
    quantity: int = Field(description="Units in stock")
    category: Union[CategoryRef, None] = Field(description="null when the category is gone")
    image: Optional[str] = Field(None, description="The first of images, or null")
    images: list[str]
    description: str
    pack: str
    videoUrl: str
    sku: Optional[str] = None
    isFeatured: bool
    isDiwaliSpecial: bool
    status: ProductStatus
    createdAt: Timestamp
    updatedAt: Timestamp


CategoryStatus = Literal["Active", "Inactive"]


class Category(Shape):
    id: Id = id_field()
    name: str
    image: Optional[str] = None
    description: Optional[str] = None
    status: CategoryStatus
    createdAt: Timestamp
    updatedAt: Timestamp


class Banner(Shape):
    id: Id = id_field()
    title: str
    subtitle: Optional[str] = None
    image: str
    link: Optional[str] = None
    status: CategoryStatus
    createdAt: Timestamp
    updatedAt: Timestamp


# -- notifications


class NotificationLink(Shape):
    """What a notification is about; the app opens the order, scheme or
    product it names."""

    orderId: Optional[Id] = None
    orderStatus: Optional[str] = None
    isPaid: Optional[bool] = None
    schemeId: Optional[Id] = None
    userId: Optional[Id] = None
    status: Optional[str] = None
    monthIndex: Optional[int] = None
    productId: Optional[Id] = None


class Notification(Shape):
    id: Id = id_field()
    user: Id
    title: str
    message: str
    type: Literal["order", "chit", "promotion", "system"]
    isRead: bool
    # absent on notifications about nothing in particular
    data: Optional[NotificationLink] = None
    createdAt: Timestamp
    updatedAt: Timestamp


class Notifications(Shape):
    """The caller's newest notifications."""

    success: Literal[True]
    count: int
    unreadCount: int
    data: list[Notification]


class Modified(Shape):
    modified: int = Field(description="How many changed")


class Empty(Shape):
    """Nothing more to say (a delete)."""


# -- savings schemes


class Scheme(Shape):
    id: Id = id_field()
    name: str
    totalAmount: Money
    installmentAmount: Money
    durationMonths: int
    description: str
    nextDueDate: Union[Timestamp, str, None] = Field(
        description="A day, or the text an admin typed that names none; null when not set"
    )
    createdAt: Timestamp
    updatedAt: Timestamp


MemberStatus = Literal["Pending", "Approved", "Rejected"]


class Member(Shape):
    """A customer's membership of a scheme."""

    id: Id = id_field()
    user: Id
    scheme: Id
    name: str
    mobileNumber: str
    address: str
    status: MemberStatus
    createdAt: Timestamp
    updatedAt: Timestamp


class Payment(Shape):
    id: Id = id_field()
    user: Id
    scheme: Id
    amount: Money
    monthIndex: int = Field(description="0 is the enrolment, 1.. the instalments")
    paymentDate: Timestamp
    status: str
    createdAt: Timestamp
    updatedAt: Timestamp


class MemberContact(Shape):
    name: Optional[str] = None
    mobileNumber: Optional[str] = None


class MyScheme(Shape):
    """A scheme the caller joined, and where they stand in it."""

    scheme: Scheme
    status: MemberStatus
    payments: list[Payment]
    user: MemberContact
    totalPaid: Money
    monthsPaid: int
    pending: int = Field(description="Payments still owed")
    joinDate: Timestamp
    nextDueDate: Optional[Timestamp]
    daysRemaining: Optional[int] = Field(description="Whole days to the next due date")
    isDue: bool


class Participant(Shape):
    """A member of a scheme as its admin screen shows them."""

    id: Id = Field(description="The member's user id")
    name: Optional[str]
    email: Optional[str]
    mobileNumber: Optional[str]
    paidMonths: int
    pending: int
    status: Literal["Pending Approval", "Joined", "Active"]
    nextDueDate: Optional[Timestamp]
    daysRemaining: Optional[int]


# -- dashboard


class OrderFigures(Shape):
    total: int
    recent: int = Field(description="Placed in the last 30 days")
    pending: int
    processing: int
    delivered: int


class ProductFigures(Shape):
    total: int
    outOfStock: int
    featured: int


class UserFigures(Shape):
    total: int


class RevenueFigures(Shape):
    total: Money
    thisMonth: Money
    average: Money


class Stats(Shape):
    orders: OrderFigures
    products: ProductFigures
    users: UserFigures
    revenue: RevenueFigures


class DaySales(Shape):
    date: str = Field(description="YYYY-MM-DD (UTC)")
    revenue: Money


class TopProduct(Shape):
    product: Id
    name: Optional[str]
    sold: int
    revenue: Money


# -- service


class Health(Shape):
    success: Literal[True]
    message: str
    timestamp: Timestamp
    environment: str


class Ready(Shape):
    success: Literal[True]
    status: Literal["ready"]
    checks: dict[str, str]


class Welcome(Shape):
    success: Literal[True]
    message: str
    version: str
    timestamp: Timestamp


class ApiDocument(Shape):
    """This document."""

    openapi: str
    info: dict[str, Any]
    tags: list[dict[str, Any]]
    paths: dict[str, Any]
    components: dict[str, Any]

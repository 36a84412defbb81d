"""Request bodies: what each route accepts, validated strictly.

Unknown fields are refused (so a client cannot set ``role`` through
``updatedetails``), strings are bounded, and money has at most two decimals.
The OpenAPI document is generated from these models.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Optional, TypeVar, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import CoreSchema

from crackershop.app.dates import parse_day
from crackershop.app.forms import as_list

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{2,}$")
MOBILE = r"^\+?[0-9]{10,15}$"
PINCODE = r"^[0-9]{6}$"
MAX_MONEY = 10_000_000

Name = Annotated[str, Field(min_length=1, max_length=100)]
ShortText = Annotated[str, Field(max_length=200)]
LongText = Annotated[str, Field(max_length=2000)]
Url = Annotated[str, Field(max_length=2048)]
ObjectIdText = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{24}$")]
Password = Annotated[str, Field(min_length=8, max_length=72)]
Quantity = Annotated[int, Field(ge=0, le=1_000_000)]
Status = Literal["Active", "Inactive"]


def _email(value: str) -> str:
    value = value.strip().lower()
    if not EMAIL.match(value):
        raise ValueError("must be a valid email address")
    return value


def _mobile(value: Any) -> Any:
    """A typed mobile number without its spaces, dashes and brackets."""
    if isinstance(value, str):
        return re.sub(r"[\s\-()]", "", value)
    return value


def _blank_is_none(value: Any) -> Any:
    """An empty form field means "not given"."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null")
    return value


T = TypeVar("T")
# A field a change may leave out, but not set to null: the record keeps a
# value there (a name, a price, a status).
Omittable = Annotated[Union[T, SkipJsonSchema[None]], AfterValidator(_not_null)]


def _password(value: str) -> str:
    if len(value.encode("utf-8")) > 72:
        raise ValueError("must be at most 72 bytes")
    return value


def _money(value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    if not math.isfinite(value) or value < 0 or value > MAX_MONEY:
        raise ValueError(f"must be a number from 0 to {MAX_MONEY}")
    if round(value, 2) != value:
        raise ValueError("must have at most two decimal places")
    return value


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    # fields a client sends that the server computes itself (names, prices,
    # totals), with the type they are sent as: accepted and dropped unread,
    # never trusted, never a 400
    ignored: ClassVar[Mapping[str, Any]] = {}

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored(cls, data: Any) -> Any:
        if cls.ignored and isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in cls.ignored}
        return data

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        for field in target.get("properties", {}).values():
            # an Omittable field: left out by default, never null
            nullable = field.get("type") == "null" or any(
                option.get("type") == "null" for option in field.get("anyOf", [])
            )
            if "default" in field and field["default"] is None and not nullable:
                del field["default"]
        for name, kind in sorted(cls.ignored.items()):
            target.setdefault("properties", {})[name] = {
                **TypeAdapter(kind).json_schema(),
                "description": "Accepted and ignored: the server computes this itself",
            }
        return schema


Mobile = Annotated[str, Field(pattern=MOBILE)]
Pincode = Annotated[str, Field(pattern=PINCODE)]
Region = Annotated[str, Field(max_length=100)]


class RegisterBody(Body):
    """The sign-up form; the address fields are sent when the user filled
    them in (district and state come from the pincode), blank ones are
    "not given"."""

    name: Name
    email: Annotated[str, Field(max_length=254)]
    password: Password
    mobileNumber: Optional[Mobile] = None
    address: Optional[ShortText] = None
    pincode: Optional[Pincode] = None
    district: Optional[Region] = None
    state: Optional[Region] = None
    avatar: Optional[Url] = None

    check_email = field_validator("email")(_email)
    check_password = field_validator("password")(_password)
    blanks = field_validator(
        "mobileNumber", "address", "pincode", "district", "state", "avatar", mode="before"
    )(_blank_is_none)
    mobile = field_validator("mobileNumber", mode="before")(_mobile)


class LoginBody(Body):
    email: Annotated[str, Field(min_length=1, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=128)]

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


class ForgotPasswordBody(Body):
    email: Annotated[str, Field(max_length=254)]

    check_email = field_validator("email")(_email)


class ResetPasswordBody(Body):
    """``{token, password}``. The app's Forgot Password screen sends
    ``{email, password}`` with no token: accepted here so that the handler
    can refuse it with a reason the screen can show."""

    token: Optional[Annotated[str, Field(min_length=1, max_length=256)]] = None
    email: Optional[Annotated[str, Field(max_length=254)]] = None
    password: Password

    check_password = field_validator("password")(_password)


def _blank_or(pattern: str) -> str:
    """The pattern, or an empty string (a field the user cleared)."""
    return f"^(?:{pattern.strip('^$')})?$"


class UpdateDetailsBody(Body):
    """Edit Profile sends every field, blank ones as "" (cleared)."""

    name: Omittable[Name] = None
    mobileNumber: Optional[Annotated[str, Field(pattern=_blank_or(MOBILE))]] = None
    avatar: Optional[Url] = None
    address: Optional[ShortText] = None
    pincode: Optional[Annotated[str, Field(pattern=_blank_or(PINCODE))]] = None
    district: Optional[Region] = None
    state: Optional[Region] = None

    mobile = field_validator("mobileNumber", mode="before")(_mobile)


class ChangePasswordBody(Body):
    currentPassword: Annotated[str, Field(min_length=1, max_length=128)]
    newPassword: Password
    # the app's form sends the confirmation too
    confirmPassword: Optional[Annotated[str, Field(max_length=128)]] = None

    check_password = field_validator("newPassword")(_password)

    @field_validator("confirmPassword")
    @classmethod
    def _confirmed(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        if value is not None and value != info.data.get("newPassword", value):
            raise ValueError("does not match the new password")
        return value


class AddressBody(Body):
    label: Annotated[str, Field(min_length=1, max_length=50)] = "Home"
    address: Annotated[str, Field(min_length=1, max_length=200)]
    pincode: Pincode
    district: Annotated[str, Field(min_length=1, max_length=100)]
    state: Annotated[str, Field(min_length=1, max_length=100)]
    isDefault: bool = False

    @field_validator("label", mode="before")
    @classmethod
    def _label(cls, value: Any) -> Any:
        return "Home" if value is None or value == "" else value


class CategoryBody(Body):
    name: Annotated[str, Field(min_length=1, max_length=50)]
    image: Optional[Url] = None
    description: Optional[Annotated[str, Field(max_length=500)]] = None
    status: Status = "Active"
    # the app's form says "no image" this way (also on create)
    clearImage: bool = False


class CategoryUpdateBody(Body):
    name: Omittable[Annotated[str, Field(min_length=1, max_length=50)]] = None
    image: Optional[Url] = None
    description: Optional[Annotated[str, Field(max_length=500)]] = None
    status: Omittable[Status] = None
    clearImage: bool = False


ProductStatus = Literal["Active", "Inactive", "Out of Stock"]


class ProductFields(Body):
    category: Omittable[ObjectIdText] = None
    price: Omittable[float] = None
    discountPrice: Optional[float] = None
    quantity: Optional[Quantity] = None
    description: Optional[LongText] = None
    image: Optional[Url] = None
    images: Optional[Annotated[list[Url], Field(max_length=5)]] = None
    existingImages: Optional[Annotated[list[Url], Field(max_length=5)]] = None
    isFeatured: Optional[bool] = None
    isDiwaliSpecial: Optional[bool] = None
    sku: Optional[Annotated[str, Field(min_length=1, max_length=64)]] = None
    pack: Optional[Annotated[str, Field(max_length=100)]] = None
    videoUrl: Optional[Url] = None
    status: Omittable[ProductStatus] = None
    # the app's form says "no images left" this way
    clearImages: bool = False

    check_money = field_validator("price", "discountPrice")(_money)
    listed = field_validator("images", "existingImages", mode="before")(as_list)


class ProductBody(ProductFields):
    name: Name
    category: ObjectIdText
    price: float


class ProductUpdateBody(ProductFields):
    name: Omittable[Name] = None


class UserAdminUpdateBody(Body):
    role: Optional[Literal["customer", "admin"]] = None
    status: Optional[Literal["Active", "Blocked", "Inactive"]] = None


class BannerBody(Body):
    title: Annotated[str, Field(min_length=1, max_length=100)]
    subtitle: Optional[Annotated[str, Field(max_length=200)]] = None
    # required: as a URL here, or as an uploaded file
    image: Optional[Annotated[str, Field(min_length=1, max_length=2048)]] = None
    link: Optional[Url] = None
    status: Status = "Active"


class BannerUpdateBody(Body):
    title: Omittable[Annotated[str, Field(min_length=1, max_length=100)]] = None
    subtitle: Optional[Annotated[str, Field(max_length=200)]] = None
    image: Omittable[Annotated[str, Field(min_length=1, max_length=2048)]] = None
    link: Optional[Url] = None
    status: Omittable[Status] = None


Months = Annotated[int, Field(ge=1, le=120)]


def _due_date(value: Any) -> Any:
    """The app's free-text due date: "" is none, a day it names is that
    day, other text is kept as typed."""
    if isinstance(value, str):
        if not value.strip():
            return None
        return parse_day(value) or value.strip()
    return value


DueDate = Union[datetime, Annotated[str, Field(max_length=100)]]


class SchemeFields(Body):
    name: Omittable[Annotated[str, Field(min_length=1, max_length=100)]] = None
    totalAmount: Omittable[float] = None
    installmentAmount: Omittable[float] = None
    durationMonths: Omittable[Months] = None
    description: Optional[Annotated[str, Field(max_length=500)]] = None
    nextDueDate: Optional[DueDate] = None

    check_money = field_validator("totalAmount", "installmentAmount")(_money)
    due = field_validator("nextDueDate", mode="before")(_due_date)


class SchemeBody(SchemeFields):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    totalAmount: float
    installmentAmount: float
    durationMonths: Months


class JoinSchemeBody(Body):
    schemeId: ObjectIdText
    name: Annotated[str, Field(min_length=1, max_length=100)]
    mobileNumber: Mobile
    address: Annotated[str, Field(min_length=1, max_length=300)]

    mobile = field_validator("mobileNumber", mode="before")(_mobile)


class MemberBody(Body):
    userId: ObjectIdText
    schemeId: ObjectIdText


class PaySchemeBody(Body):
    schemeId: ObjectIdText
    amount: float
    monthIndex: Annotated[int, Field(ge=0, le=120)]

    check_money = field_validator("amount")(_money)


class AdminPaySchemeBody(Body):
    schemeId: ObjectIdText
    userId: ObjectIdText


class GoogleBody(Body):
    idToken: Annotated[str, Field(min_length=1, max_length=8192)]

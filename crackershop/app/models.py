"""Request bodies: what each route accepts, validated strictly.

Unknown fields are refused (so a client cannot set ``role`` through
``updatedetails``), strings are bounded, and money has at most two decimals.
The OpenAPI document is generated from these models.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class RegisterBody(Body):
    name: Name
    email: Annotated[str, Field(max_length=254)]
    password: Password
    mobileNumber: Optional[Annotated[str, Field(pattern=MOBILE)]] = None
    avatar: Optional[Url] = None

    check_email = field_validator("email")(_email)
    check_password = field_validator("password")(_password)


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
    token: Annotated[str, Field(min_length=1, max_length=256)]
    password: Password

    check_password = field_validator("password")(_password)


class UpdateDetailsBody(Body):
    name: Optional[Name] = None
    mobileNumber: Optional[Annotated[str, Field(pattern=MOBILE)]] = None
    avatar: Optional[Url] = None
    address: Optional[ShortText] = None
    pincode: Optional[Annotated[str, Field(pattern=PINCODE)]] = None
    district: Optional[Annotated[str, Field(max_length=100)]] = None
    state: Optional[Annotated[str, Field(max_length=100)]] = None


class ChangePasswordBody(Body):
    currentPassword: Annotated[str, Field(min_length=1, max_length=128)]
    newPassword: Password

    check_password = field_validator("newPassword")(_password)


class AddressBody(Body):
    label: Annotated[str, Field(min_length=1, max_length=50)] = "Home"
    address: Annotated[str, Field(min_length=1, max_length=200)]
    pincode: Annotated[str, Field(pattern=PINCODE)]
    district: Annotated[str, Field(min_length=1, max_length=100)]
    state: Annotated[str, Field(min_length=1, max_length=100)]
    isDefault: bool = False


class CategoryBody(Body):
    name: Annotated[str, Field(min_length=1, max_length=50)]
    image: Optional[Url] = None
    description: Optional[Annotated[str, Field(max_length=500)]] = None
    status: Status = "Active"


class CategoryUpdateBody(Body):
    name: Optional[Annotated[str, Field(min_length=1, max_length=50)]] = None
    image: Optional[Url] = None
    description: Optional[Annotated[str, Field(max_length=500)]] = None
    status: Optional[Status] = None


ProductStatus = Literal["Active", "Inactive", "Out of Stock"]


class ProductFields(Body):
    category: Optional[ObjectIdText] = None
    price: Optional[float] = None
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
    status: Optional[ProductStatus] = None

    check_money = field_validator("price", "discountPrice")(_money)
    listed = field_validator("images", "existingImages", mode="before")(as_list)


class ProductBody(ProductFields):
    name: Name
    category: ObjectIdText
    price: float


class ProductUpdateBody(ProductFields):
    name: Optional[Name] = None


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
    title: Optional[Annotated[str, Field(min_length=1, max_length=100)]] = None
    subtitle: Optional[Annotated[str, Field(max_length=200)]] = None
    image: Optional[Annotated[str, Field(min_length=1, max_length=2048)]] = None
    link: Optional[Url] = None
    status: Optional[Status] = None


Months = Annotated[int, Field(ge=1, le=120)]


class SchemeFields(Body):
    name: Optional[Annotated[str, Field(min_length=1, max_length=100)]] = None
    totalAmount: Optional[float] = None
    installmentAmount: Optional[float] = None
    durationMonths: Optional[Months] = None
    description: Optional[Annotated[str, Field(max_length=500)]] = None
    nextDueDate: Optional[Annotated[datetime, Field(strict=False)]] = None

    check_money = field_validator("totalAmount", "installmentAmount")(_money)


class SchemeBody(SchemeFields):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    totalAmount: float
    installmentAmount: float
    durationMonths: Months


class JoinSchemeBody(Body):
    schemeId: ObjectIdText
    name: Annotated[str, Field(min_length=1, max_length=100)]
    mobileNumber: Annotated[str, Field(pattern=MOBILE)]
    address: Annotated[str, Field(min_length=1, max_length=300)]


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

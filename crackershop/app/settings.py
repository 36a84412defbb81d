"""/api/v1/settings: the shop-wide settings document.

Order pricing reads the document from the database for every order, so an
admin's change applies to the next order on every worker and server.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Optional

from pydantic import Field, field_validator

from crackershop.app.models import Body, Url
from crackershop.app.responses import Id, Shape, Success, id_field
from crackershop.app.routing import Call, Reply, Route, ok
from crackershop.app.uploads import Uploads, ref
from crackershop.errors import ValidationFailed
from crackershop.store.interfaces import IStore

MAX_FEE = 1_000_000
Text = Annotated[str, Field(max_length=2000)]
Short = Annotated[str, Field(max_length=200)]


def _amount(value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    if not math.isfinite(value) or value < 0 or value > MAX_FEE:
        raise ValueError(f"must be a number from 0 to {MAX_FEE}")
    if round(value, 2) != value:
        raise ValueError("must have at most two decimal places")
    return value


# what GET returns beside the values; a client may send it back unchanged
READ_ONLY: dict[str, Any] = {"_id": str, "createdAt": str, "updatedAt": str, "__v": int}


class Part(Body):
    """One part of the settings document, as GET returns it."""

    ignored = READ_ONLY


class AboutUsPart(Part):
    title: Optional[Annotated[str, Field(max_length=200)]] = None
    description: Optional[Text] = None
    mission: Optional[Text] = None
    vision: Optional[Text] = None
    image: Optional[Url] = None


class ShippingPart(Part):
    baseFee: Optional[float] = None
    freeShippingAbove: Optional[float] = None
    description: Optional[Text] = None

    check = field_validator("baseFee", "freeShippingAbove")(_amount)


class FeesPart(Part):
    packagingFee: Optional[float] = None
    handlingFee: Optional[float] = None
    taxRate: Optional[float] = None
    description: Optional[Text] = None

    check = field_validator("packagingFee", "handlingFee")(_amount)

    @field_validator("taxRate")
    @classmethod
    def _rate(cls, value: Optional[float]) -> Optional[float]:
        value = _amount(value)
        if value is not None and value > 100:
            raise ValueError("must be a percentage from 0 to 100")
        return value


class OrderSettingsPart(Part):
    minimumOrderAmount: Optional[float] = None
    description: Optional[Text] = None

    check = field_validator("minimumOrderAmount")(_amount)


def _coordinate(limit: float) -> Any:
    def check(cls: Any, value: Optional[float]) -> Optional[float]:
        if value is not None and (not math.isfinite(value) or abs(value) > limit):
            raise ValueError(f"must be a number from -{limit:g} to {limit:g}")
        return value

    return classmethod(check)


class ContactPart(Part):
    email: Optional[Short] = None
    phone: Optional[Annotated[str, Field(max_length=30)]] = None
    whatsapp: Optional[Annotated[str, Field(max_length=30)]] = None
    address: Optional[Annotated[str, Field(max_length=500)]] = None
    website: Optional[Url] = None
    mapUrl: Optional[Url] = None
    hours: Optional[Short] = None
    # where About Us puts the shop on a map; null when not set
    latitude: Optional[float] = None
    longitude: Optional[float] = None

    check_latitude = field_validator("latitude")(_coordinate(90))
    check_longitude = field_validator("longitude")(_coordinate(180))


class SettingsBody(Body):
    ignored = READ_ONLY

    aboutUs: Optional[AboutUsPart] = None
    shipping: Optional[ShippingPart] = None
    fees: Optional[FeesPart] = None
    orderSettings: Optional[OrderSettingsPart] = None
    contact: Optional[ContactPart] = None


class AboutUs(Shape):
    title: str
    description: str
    mission: str
    vision: str
    image: str


class Shipping(Shape):
    baseFee: float
    freeShippingAbove: float = Field(description="Orders from this amount ship free")
    description: str


class Fees(Shape):
    packagingFee: float
    handlingFee: float
    taxRate: float = Field(description="Percent")
    description: str


class OrderSettings(Shape):
    minimumOrderAmount: float
    description: str


class Contact(Shape):
    email: str
    phone: str
    address: str
    latitude: Optional[float]
    longitude: Optional[float]
    whatsapp: Optional[str] = None
    website: Optional[str] = None
    mapUrl: Optional[str] = None
    hours: Optional[str] = None


class Settings(Shape):
    """The shop's settings; every number is present (never null)."""

    id: Id = id_field()
    aboutUs: AboutUs
    shipping: Shipping
    fees: Fees
    orderSettings: OrderSettings
    contact: Contact
    createdAt: Optional[datetime] = None
    updatedAt: Optional[datetime] = None


PART_BODIES: dict[str, type[Part]] = {
    "about-us": AboutUsPart,
    "shipping": ShippingPart,
    "fees": FeesPart,
    "order-settings": OrderSettingsPart,
}
PART_FIELDS = {
    "about-us": "aboutUs",
    "shipping": "shipping",
    "fees": "fees",
    "order-settings": "orderSettings",
}


# fields whose null means "not set" rather than a mistake
NULLABLE = frozenset({"latitude", "longitude"})


def _given(part: Body) -> dict[str, Any]:
    values = part.model_dump(exclude_unset=True)
    nulls = sorted(k for k, v in values.items() if v is None and k not in NULLABLE)
    if nulls:
        raise ValidationFailed(None, {k: "may not be null" for k in nulls})
    return values


def public_settings(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "__v"}


ABOUT_IMAGE = ref("settings", "aboutUs")


class SettingsHandlers:
    def __init__(self, store: IStore, uploads: Uploads) -> None:
        self.store = store
        self.uploads = uploads

    def routes(self) -> list[Route]:
        s = "/api/v1/settings"
        routes = [
            Route(
                "GET",
                s,
                self.get_all,
                "The shop's settings",
                operation="getSettings",
                response=Success[Settings],
                tag="settings",
            ),
            Route(
                "GET",
                f"{s}/about-us",
                self.get_about,
                "About the shop",
                operation="getAboutUs",
                response=Success[AboutUs],
                tag="settings",
            ),
            Route(
                "GET",
                f"{s}/order-settings",
                self.get_order_settings,
                "Order rules (minimum order amount)",
                operation="getOrderSettings",
                response=Success[OrderSettings],
                tag="settings",
            ),
            Route(
                "PUT",
                s,
                self.put_all,
                "Change any parts of the settings",
                operation="updateSettings",
                access="admin",
                body=SettingsBody,
                response=Success[Settings],
                tag="settings",
            ),
        ]
        for path, model in PART_BODIES.items():
            name = PART_FIELDS[path]
            routes.append(
                Route(
                    "PUT",
                    f"{s}/{path}",
                    self._put_part(name),
                    f"Change the {name} settings",
                    operation="update" + name[0].upper() + name[1:],
                    access="admin",
                    body=model,
                    response=Success[Settings],
                    tag="settings",
                )
            )
        return routes

    async def get_all(self, call: Call) -> Reply:
        return ok(public_settings(await self.store.settings.get()))

    async def get_about(self, call: Call) -> Reply:
        return ok((await self.store.settings.get())["aboutUs"])

    async def get_order_settings(self, call: Call) -> Reply:
        return ok((await self.store.settings.get())["orderSettings"])

    async def put_all(self, call: Call) -> Reply:
        body: SettingsBody = call.body
        changes: dict[str, dict[str, Any]] = {}
        for name in SettingsBody.model_fields:
            part = getattr(body, name)
            if part is not None:
                changes[name] = _given(part)
        if not any(changes.values()):
            raise ValidationFailed("Nothing to change", {"body": "give at least one setting"})
        return ok(public_settings(await self._update(call, changes)))

    async def _update(self, call: Call, changes: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Write the changes; the About Us image is referenced like any
        document's image, so it is never deleted while shown."""
        if "image" not in changes.get("aboutUs", {}):
            return await self.store.settings.update(changes)
        current = (await self.store.settings.get())["aboutUs"].get("image")
        async with self.uploads.single(call, "image", ABOUT_IMAGE, changes["aboutUs"], current):
            return await self.store.settings.update(changes)

    def _put_part(self, name: str) -> Any:
        async def put(call: Call) -> Reply:
            values = _given(call.body)
            if not values:
                raise ValidationFailed("Nothing to change", {"body": "give at least one setting"})
            updated = await self._update(call, {name: values})
            return ok(public_settings(updated))

        return put

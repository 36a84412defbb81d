"""/api/v1/chit: Diwali savings schemes.

A customer asks to join (Pending); an admin approves or rejects (and the
member is notified); an approved member pays each month index once
(0 is the enrolment, 1..durationMonths the instalments). A unique index on
(user, scheme, monthIndex) makes a second payment for a month impossible,
even when two requests race.
"""

from __future__ import annotations

import calendar
from datetime import datetime
from typing import Any, Optional

from bson import ObjectId
from twisted.internet.interfaces import IReactorTime

from crackershop.app.models import (
    AdminPaySchemeBody,
    JoinSchemeBody,
    MemberBody,
    PaySchemeBody,
    SchemeBody,
    SchemeFields,
)
from crackershop.app.notify import Notifier
from crackershop.app.routing import Call, Reply, Route, ok
from crackershop.errors import Conflict, DuplicateKey, NotFound, ValidationFailed
from crackershop.store.interfaces import Document, IStore
from crackershop.store.mongo import now_utc

PENDING, APPROVED, REJECTED = "Pending", "Approved", "Rejected"


def add_months(when: datetime, months: int) -> datetime:
    month = when.month - 1 + months
    year = when.year + month // 12
    month = month % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def progress(
    scheme: Document, member: Document, payments: list[Document], now: datetime
) -> dict[str, Any]:
    """A member's standing in a scheme: what is paid and whether a payment is due."""
    paid = sorted(p["monthIndex"] for p in payments if p.get("status", "Paid") == "Paid")
    instalments = [i for i in paid if i >= 1]
    joined = member.get("createdAt", now)
    duration = int(scheme.get("durationMonths", 0))
    next_index = next((i for i in range(1, duration + 1) if i not in paid), None)
    due_on = add_months(joined, next_index - 1) if next_index is not None else None
    return {
        "totalPaid": round(
            sum(p.get("amount", 0) for p in payments if p.get("status", "Paid") == "Paid"), 2
        ),
        "monthsPaid": len(instalments),
        "joinDate": joined,
        "nextMonthIndex": next_index,
        "nextDueDate": due_on,
        "isDue": member.get("status") == APPROVED and due_on is not None and due_on <= now,
    }


class ChitHandlers:
    def __init__(self, store: IStore, notifier: Notifier, clock: IReactorTime) -> None:
        self.store = store
        self.notifier = notifier
        self.clock = clock

    def routes(self) -> list[Route]:
        p = "/api/v1/chit"
        return [
            Route("GET", f"{p}/schemes", self.list_schemes, "List savings schemes", tag="chit"),
            Route("GET", f"{p}/schemes/{{id}}", self.get_scheme, "One scheme", tag="chit"),
            Route(
                "POST",
                f"{p}/schemes",
                self.create_scheme,
                "Create a scheme",
                access="admin",
                body=SchemeBody,
                tag="chit",
            ),
            Route(
                "PUT",
                f"{p}/schemes/{{id}}",
                self.update_scheme,
                "Update a scheme",
                access="admin",
                body=SchemeFields,
                tag="chit",
            ),
            Route(
                "DELETE",
                f"{p}/schemes/{{id}}",
                self.delete_scheme,
                "Delete a scheme without members",
                access="admin",
                tag="chit",
            ),
            Route(
                "GET",
                f"{p}/schemes/{{id}}/participants",
                self.participants,
                "A scheme's members and their payments",
                access="admin",
                tag="chit",
            ),
            Route(
                "POST",
                f"{p}/request-join",
                self.request_join,
                "Ask to join a scheme",
                access="user",
                body=JoinSchemeBody,
                tag="chit",
            ),
            Route(
                "POST",
                f"{p}/admin/approve",
                self.approve,
                "Approve a membership",
                access="admin",
                body=MemberBody,
                tag="chit",
            ),
            Route(
                "POST",
                f"{p}/admin/reject",
                self.reject,
                "Reject a membership",
                access="admin",
                body=MemberBody,
                tag="chit",
            ),
            Route(
                "GET",
                f"{p}/my",
                self.my,
                "My schemes and their progress",
                access="user",
                tag="chit",
            ),
            Route(
                "POST",
                f"{p}/pay",
                self.pay,
                "Pay a month of a scheme",
                access="user",
                body=PaySchemeBody,
                tag="chit",
            ),
            Route(
                "POST",
                f"{p}/admin/pay",
                self.admin_pay,
                "Record a member's next instalment",
                access="admin",
                body=AdminPaySchemeBody,
                tag="chit",
            ),
        ]

    async def _scheme(self, scheme_id: ObjectId) -> Document:
        scheme = await self.store.chit.get_scheme(scheme_id)
        if scheme is None:
            raise NotFound("Scheme not found")
        return scheme

    @staticmethod
    def _check_amounts(fields: dict[str, Any]) -> None:
        total, instalment = fields.get("totalAmount"), fields.get("installmentAmount")
        if total is not None and instalment is not None and instalment > total:
            raise ValidationFailed(
                "Validation failed", {"installmentAmount": "must not exceed the total amount"}
            )

    async def list_schemes(self, call: Call) -> Reply:
        schemes = await self.store.chit.list_schemes()
        return ok(schemes, count=len(schemes))

    async def get_scheme(self, call: Call) -> Reply:
        return ok(await self._scheme(call.object_id("id", "Scheme")))

    async def create_scheme(self, call: Call) -> Reply:
        body: SchemeBody = call.body
        fields = body.model_dump(exclude_none=True)
        self._check_amounts(fields)
        return ok(await self.store.chit.create_scheme(fields), 201)

    async def update_scheme(self, call: Call) -> Reply:
        body: SchemeFields = call.body
        scheme_id = call.object_id("id", "Scheme")
        current = await self._scheme(scheme_id)
        changes = body.model_dump(exclude_unset=True)
        for required in ("name", "totalAmount", "installmentAmount", "durationMonths"):
            if required in changes and changes[required] is None:
                raise ValidationFailed("Validation failed", {required: "may not be null"})
        self._check_amounts({**current, **changes})
        updated = await self.store.chit.update_scheme(scheme_id, changes) if changes else current
        if updated is None:
            raise NotFound("Scheme not found")
        return ok(updated)

    async def delete_scheme(self, call: Call) -> Reply:
        scheme_id = call.object_id("id", "Scheme")
        await self._scheme(scheme_id)
        if await self.store.chit.members_of(scheme_id):
            raise Conflict("This scheme has members and cannot be deleted")
        await self.store.chit.delete_scheme(scheme_id)
        return ok({})

    async def request_join(self, call: Call) -> Reply:
        body: JoinSchemeBody = call.body
        user = call.require_user()
        scheme = await self._scheme(ObjectId(body.schemeId))
        try:
            member = await self.store.chit.add_member(
                {
                    "user": user["_id"],
                    "scheme": scheme["_id"],
                    "name": body.name,
                    "mobileNumber": body.mobileNumber,
                    "address": body.address,
                    "status": PENDING,
                }
            )
        except DuplicateKey:
            raise Conflict("You have already asked to join this scheme") from None
        return ok(member, 201)

    async def _decide(self, call: Call, status: str, allowed: tuple[str, ...]) -> Reply:
        body: MemberBody = call.body
        user_id, scheme_id = ObjectId(body.userId), ObjectId(body.schemeId)
        scheme = await self._scheme(scheme_id)
        member = await self.store.chit.set_member_status(user_id, scheme_id, allowed, status)
        if member is None:
            if await self.store.chit.member(user_id, scheme_id) is None:
                raise NotFound("Membership not found")
            raise Conflict(f"This membership cannot be moved to {status}")
        verb = "approved" if status == APPROVED else "rejected"
        await self.notifier.notify(
            user_id,
            f"Savings scheme {verb}",
            f"Your request to join {scheme['name']} has been {verb}.",
            "chit",
            {"schemeId": str(scheme_id), "status": status},
        )
        return ok(member)

    async def approve(self, call: Call) -> Reply:
        return await self._decide(call, APPROVED, (PENDING, REJECTED))

    async def reject(self, call: Call) -> Reply:
        return await self._decide(call, REJECTED, (PENDING,))

    async def my(self, call: Call) -> Reply:
        user = call.require_user()
        now = now_utc(self.clock)
        result = []
        for member in await self.store.chit.memberships_of(user["_id"]):
            scheme = await self.store.chit.get_scheme(member["scheme"])
            if scheme is None:
                continue
            payments = await self.store.chit.payments(scheme["_id"], user["_id"])
            result.append(
                {
                    "scheme": scheme,
                    "status": member.get("status"),
                    "payments": payments,
                    **progress(scheme, member, payments, now),
                }
            )
        return ok(result, count=len(result))

    async def _record(
        self, user_id: ObjectId, scheme: Document, month: int, amount: Optional[float] = None
    ) -> Document:
        member = await self.store.chit.member(user_id, scheme["_id"])
        if member is None or member.get("status") != APPROVED:
            raise Conflict("Only an approved member can pay into this scheme")
        if month > int(scheme["durationMonths"]):
            raise ValidationFailed(
                "Validation failed",
                {"monthIndex": f"must be at most {scheme['durationMonths']}"},
            )
        instalment = float(scheme["installmentAmount"])
        if amount is not None and round(amount, 2) != round(instalment, 2):
            raise ValidationFailed(
                "Validation failed", {"amount": f"must equal the instalment, {instalment}"}
            )
        try:
            return await self.store.chit.add_payment(
                {
                    "user": user_id,
                    "scheme": scheme["_id"],
                    "amount": instalment,
                    "monthIndex": month,
                    "paymentDate": now_utc(self.clock),
                    "status": "Paid",
                }
            )
        except DuplicateKey:
            raise Conflict(f"Month {month} of this scheme is already paid") from None

    async def pay(self, call: Call) -> Reply:
        body: PaySchemeBody = call.body
        scheme = await self._scheme(ObjectId(body.schemeId))
        payment = await self._record(
            call.require_user()["_id"], scheme, body.monthIndex, body.amount
        )
        return ok(payment, 201)

    async def admin_pay(self, call: Call) -> Reply:
        body: AdminPaySchemeBody = call.body
        user_id = ObjectId(body.userId)
        scheme = await self._scheme(ObjectId(body.schemeId))
        paid = {p["monthIndex"] for p in await self.store.chit.payments(scheme["_id"], user_id)}
        month = next(
            (i for i in range(1, int(scheme["durationMonths"]) + 1) if i not in paid), None
        )
        if month is None:
            raise Conflict("Every instalment of this scheme is already paid")
        return ok(await self._record(user_id, scheme, month), 201)

    async def participants(self, call: Call) -> Reply:
        scheme = await self._scheme(call.object_id("id", "Scheme"))
        payments = await self.store.chit.payments(scheme["_id"])
        members = await self.store.chit.members_of(scheme["_id"])
        users = {}
        for member in members:
            found = await self.store.users.get(member["user"])
            if found is not None:
                users[member["user"]] = found
        result = []
        for member in members:
            if member.get("status") == REJECTED:
                continue
            paid = sum(1 for p in payments if p["user"] == member["user"] and p["monthIndex"] >= 1)
            user = users.get(member["user"], {})
            if member.get("status") == PENDING:
                status = "Pending Approval"
            else:
                status = "Active" if paid else "Joined"
            result.append(
                {
                    "id": member["user"],
                    "name": member.get("name") or user.get("name"),
                    "email": user.get("email"),
                    "paidMonths": paid,
                    "pending": max(int(scheme["durationMonths"]) - paid, 0),
                    "status": status,
                }
            )
        return ok(result, count=len(result))

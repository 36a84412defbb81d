"""/api/v1/chit: Diwali savings schemes.

A customer asks to join (Pending); an admin approves or rejects (and the
member is notified); an approved member pays each month index once
(0 is the enrolment, 1..durationMonths the instalments). A unique index on
(user, scheme, monthIndex) makes a second payment for a month impossible,
even when two requests race.
"""

from __future__ import annotations

import calendar
import contextlib
from datetime import datetime
from typing import Any, Optional

from bson import ObjectId
from twisted.internet.interfaces import IReactorTime

from crackershop.app.dates import days_until
from crackershop.app.models import (
    AdminPaySchemeBody,
    JoinSchemeBody,
    MemberBody,
    PaySchemeBody,
    SchemeBody,
    SchemeFields,
)
from crackershop.app.notify import Notifier
from crackershop.app.responses import (
    Empty,
    Listing,
    Member,
    MyScheme,
    Participant,
    Payment,
    Scheme,
    Success,
)
from crackershop.app.routing import Call, Reply, Route, ok
from crackershop.clock import now_utc
from crackershop.errors import Conflict, DuplicateKey, NotFound, ValidationFailed
from crackershop.store.interfaces import Document, IStore

PENDING, APPROVED, REJECTED = "Pending", "Approved", "Rejected"
ENROLMENT = 0  # the month index of the payment made on joining


def add_months(when: datetime, months: int) -> datetime:
    month = when.month - 1 + months
    year = when.year + month // 12
    month = month % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def public_scheme(doc: Document) -> Document:
    """A scheme with the fields its screens read, even when never set."""
    return {
        **doc,
        "description": doc.get("description") or "",
        "nextDueDate": doc.get("nextDueDate"),
    }


def _paid(payments: list[Document]) -> list[Document]:
    return [p for p in payments if p.get("status", "Paid") == "Paid"]


def progress(
    scheme: Document, member: Document, payments: list[Document], now: datetime
) -> dict[str, Any]:
    """A member's standing in a scheme, counted as the app counts it.

    The enrolment (month 0, recorded when the admin approves) counts as a
    paid month, and a member owes ``durationMonths`` payments in all. The
    next one is due on the scheme's own due date when the admin has set one,
    else a month after the previous one from the day the member joined.
    """
    paid = _paid(payments)
    months = sorted({int(p["monthIndex"]) for p in paid})
    duration = int(scheme.get("durationMonths", 0))
    pending = max(duration - len(months), 0)
    joined = member.get("createdAt", now)
    due_on: Optional[datetime] = None
    if member.get("status") == APPROVED and pending:
        scheduled = scheme.get("nextDueDate")
        if isinstance(scheduled, datetime):
            due_on = scheduled
        else:
            index = next(i for i in range(1, duration + 1) if i not in months)
            due_on = add_months(joined, index)
    days = days_until(due_on, now) if due_on is not None else None
    return {
        "totalPaid": round(sum(p.get("amount", 0) for p in paid), 2),
        "monthsPaid": len(months),
        "pending": pending,
        "joinDate": joined,
        "nextDueDate": due_on,
        "daysRemaining": days,
        "isDue": days is not None and days <= 0,
    }


class ChitHandlers:
    def __init__(self, store: IStore, notifier: Notifier, clock: IReactorTime) -> None:
        self.store = store
        self.notifier = notifier
        self.clock = clock

    def routes(self) -> list[Route]:
        p = "/api/v1/chit"
        return [
            Route(
                "GET",
                f"{p}/schemes",
                self.list_schemes,
                "List savings schemes",
                operation="listSchemes",
                response=Listing[Scheme],
                tag="chit",
            ),
            Route(
                "GET",
                f"{p}/schemes/{{id}}",
                self.get_scheme,
                "One scheme",
                operation="getScheme",
                response=Success[Scheme],
                tag="chit",
            ),
            Route(
                "POST",
                f"{p}/schemes",
                self.create_scheme,
                "Create a scheme",
                operation="createScheme",
                access="admin",
                body=SchemeBody,
                response=Success[Scheme],
                success=(201,),
                tag="chit",
            ),
            Route(
                "PUT",
                f"{p}/schemes/{{id}}",
                self.update_scheme,
                "Update a scheme",
                operation="updateScheme",
                access="admin",
                body=SchemeFields,
                response=Success[Scheme],
                tag="chit",
            ),
            Route(
                "DELETE",
                f"{p}/schemes/{{id}}",
                self.delete_scheme,
                "Delete a scheme without members",
                operation="deleteScheme",
                access="admin",
                response=Success[Empty],
                tag="chit",
            ),
            Route(
                "GET",
                f"{p}/schemes/{{id}}/participants",
                self.participants,
                "A scheme's members and their payments",
                operation="listParticipants",
                access="admin",
                response=Listing[Participant],
                tag="chit",
            ),
            Route(
                "POST",
                f"{p}/request-join",
                self.request_join,
                "Ask to join a scheme",
                operation="requestJoinScheme",
                access="user",
                body=JoinSchemeBody,
                response=Success[Member],
                success=(201,),
                tag="chit",
            ),
            Route(
                "POST",
                f"{p}/admin/approve",
                self.approve,
                "Approve a membership",
                operation="approveMember",
                access="admin",
                body=MemberBody,
                response=Success[Member],
                tag="chit",
            ),
            Route(
                "POST",
                f"{p}/admin/reject",
                self.reject,
                "Reject a membership",
                operation="rejectMember",
                access="admin",
                body=MemberBody,
                response=Success[Member],
                tag="chit",
            ),
            Route(
                "GET",
                f"{p}/my",
                self.my,
                "My schemes and their progress",
                operation="listMySchemes",
                access="user",
                response=Listing[MyScheme],
                tag="chit",
            ),
            Route(
                "POST",
                f"{p}/pay",
                self.pay,
                "Pay a month of a scheme",
                operation="payScheme",
                access="user",
                body=PaySchemeBody,
                response=Success[Payment],
                success=(201,),
                tag="chit",
            ),
            Route(
                "POST",
                f"{p}/admin/pay",
                self.admin_pay,
                "Record a member's next instalment",
                operation="recordSchemePayment",
                access="admin",
                body=AdminPaySchemeBody,
                response=Success[Payment],
                success=(201,),
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
            raise ValidationFailed(None, {"installmentAmount": "must not exceed the total amount"})

    async def list_schemes(self, call: Call) -> Reply:
        schemes = await self.store.chit.list_schemes()
        return ok([public_scheme(s) for s in schemes], count=len(schemes))

    async def get_scheme(self, call: Call) -> Reply:
        return ok(public_scheme(await self._scheme(call.object_id("id", "Scheme"))))

    async def create_scheme(self, call: Call) -> Reply:
        body: SchemeBody = call.body
        fields = body.model_dump(exclude_none=True)
        self._check_amounts(fields)
        return ok(public_scheme(await self.store.chit.create_scheme(fields)), 201)

    async def update_scheme(self, call: Call) -> Reply:
        body: SchemeFields = call.body
        scheme_id = call.object_id("id", "Scheme")
        current = await self._scheme(scheme_id)
        changes = body.model_dump(exclude_unset=True)
        for required in ("name", "totalAmount", "installmentAmount", "durationMonths"):
            if required in changes and changes[required] is None:
                raise ValidationFailed(None, {required: "may not be null"})
        self._check_amounts({**current, **changes})
        updated = await self.store.chit.update_scheme(scheme_id, changes) if changes else current
        if updated is None:
            raise NotFound("Scheme not found")
        return ok(public_scheme(updated))

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
        self.notifier.broadcast(
            "admin",
            "Savings scheme request",
            f"{body.name} asked to join {scheme['name']}.",
            "chit",
            {"schemeId": str(scheme["_id"]), "userId": str(user["_id"])},
        )
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
        if status == APPROVED:
            await self._enrol(user_id, scheme)
        verb = "approved" if status == APPROVED else "rejected"
        await self.notifier.notify(
            user_id,
            f"Savings scheme {verb}",
            f"Your request to join {scheme['name']} has been {verb}.",
            "chit",
            {"schemeId": str(scheme_id), "status": status},
        )
        return ok(member)

    async def _enrol(self, user_id: ObjectId, scheme: Document) -> None:
        """Record the enrolment payment an approval stands for (once)."""
        with contextlib.suppress(DuplicateKey):
            await self.store.chit.add_payment(self._payment(user_id, scheme, ENROLMENT))

    def _payment(self, user_id: ObjectId, scheme: Document, month: int) -> dict[str, Any]:
        return {
            "user": user_id,
            "scheme": scheme["_id"],
            "amount": float(scheme["installmentAmount"]),
            "monthIndex": month,
            "paymentDate": now_utc(self.clock),
            "status": "Paid",
        }

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
                    "scheme": public_scheme(scheme),
                    "status": member.get("status"),
                    "payments": payments,
                    "user": {
                        "name": member.get("name") or user.get("name"),
                        "mobileNumber": member.get("mobileNumber") or user.get("mobileNumber"),
                    },
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
                None, {"monthIndex": f"must be at most {scheme['durationMonths']}"}
            )
        instalment = float(scheme["installmentAmount"])
        if amount is not None and round(amount, 2) != round(instalment, 2):
            raise ValidationFailed(None, {"amount": f"must equal the instalment, {instalment}"})
        try:
            return await self.store.chit.add_payment(self._payment(user_id, scheme, month))
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
        member = await self.store.chit.member(user_id, scheme["_id"])
        payments = await self.store.chit.payments(scheme["_id"], user_id)
        now = now_utc(self.clock)
        if member is not None and not progress(scheme, member, payments, now)["pending"]:
            raise Conflict("Every instalment of this scheme is already paid")
        paid = {p["monthIndex"] for p in payments}
        month = next(
            (i for i in range(1, int(scheme["durationMonths"]) + 1) if i not in paid), None
        )
        if month is None:
            raise Conflict("Every instalment of this scheme is already paid")
        payment = await self._record(user_id, scheme, month)
        await self.notifier.notify(
            user_id,
            "Payment recorded",
            f"Your instalment {month} of {scheme['name']} is recorded. Thank you!",
            "chit",
            {"schemeId": str(scheme["_id"]), "monthIndex": month},
        )
        return ok(payment, 201)

    async def participants(self, call: Call) -> Reply:
        scheme = await self._scheme(call.object_id("id", "Scheme"))
        payments = await self.store.chit.payments(scheme["_id"])
        members = [
            m
            for m in await self.store.chit.members_of(scheme["_id"])
            if m.get("status") != REJECTED
        ]
        found = await self.store.users.by_ids(list({m["user"] for m in members}))
        users = {u["_id"]: u for u in found}
        now = now_utc(self.clock)
        result = []
        for member in members:
            mine = [p for p in payments if p["user"] == member["user"]]
            standing = progress(scheme, member, mine, now)
            user = users.get(member["user"], {})
            if member.get("status") == PENDING:
                status = "Pending Approval"
            else:
                status = "Active" if standing["monthsPaid"] > 1 else "Joined"
            result.append(
                {
                    "id": member["user"],
                    "name": member.get("name") or user.get("name"),
                    "email": user.get("email"),
                    "mobileNumber": member.get("mobileNumber") or user.get("mobileNumber"),
                    "paidMonths": standing["monthsPaid"],
                    "pending": standing["pending"],
                    "status": status,
                    "nextDueDate": standing["nextDueDate"],
                    "daysRemaining": standing["daysRemaining"],
                }
            )
        return ok(result, count=len(result))

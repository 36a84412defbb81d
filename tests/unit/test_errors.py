"""Validation errors say what is wrong in words the app can show."""

from __future__ import annotations

from crackershop.errors import ValidationFailed, describe, field_label


def test_field_labels_read_as_words() -> None:
    """camelCase and indexed paths become labels a person reads."""
    assert field_label("mobileNumber") == "Mobile number"
    assert field_label("password") == "Password"
    assert field_label("orderItems.0.qty") == "Qty of order item 1"
    assert field_label("orderItems.2.product") == "Product of order item 3"


def test_the_first_problem_is_the_message() -> None:
    """The message is the first problem as a sentence, counting the rest."""
    assert describe({"password": "must be at least 8 characters"}) == (
        "Password must be at least 8 characters"
    )
    assert describe({"name": "is required", "email": "is required", "x": "y"}) == (
        "Name is required (and 2 more problems)"
    )
    assert describe({"body": "give at least one setting"}) == "give at least one setting"
    assert describe({}) == "The request is not valid"


def test_an_own_message_is_kept() -> None:
    """A message given by the raiser wins over the generated one."""
    error = ValidationFailed("Too many order lines", {"orderItems": "at most 50 lines"})
    assert error.message == "Too many order lines"
    assert ValidationFailed(None, {"pincode": "must be a 6-digit PIN code"}).message == (
        "Pincode must be a 6-digit PIN code"
    )

"""Files belong to what uses them: a customer touches no one else's image,
and an image is deleted only when nothing uses it any more."""

from __future__ import annotations

from bson import ObjectId
from twisted.internet.defer import ensureDeferred

from crackershop.app.uploads import ref
from tests.unit.app.harness import Harness

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
BASE = "http://shop.test/uploads/"


def put_file(h: Harness, name: str, owner: ObjectId, *refs: str) -> str:
    """A file as the server stores an upload (by ``owner``, used by
    ``refs``); its URL."""
    done = ensureDeferred(h.store.uploads.put(name, PNG, "image/png", owner, list(refs)))
    assert done.called
    return BASE + name


def user_id(h: Harness, token: str) -> ObjectId:
    return ObjectId(h.request("GET", "/api/v1/auth/me", token=token)[1]["data"]["_id"])


def test_a_customer_cannot_take_someone_elses_image_as_avatar() -> None:
    """An avatar is an image the user uploaded or an external https URL:
    another user's file or a product's is a 403, a plain http URL a 400,
    and the target stays."""
    h = Harness()
    admin = h.admin()
    product_image = put_file(h, "a" * 32 + ".png", user_id(h, admin), "product:p1")
    mallory = h.register("mallory@example.com")
    victim = h.register("victim@example.com")
    victim_avatar = put_file(
        h, "b" * 32 + ".png", user_id(h, victim), ref("user", user_id(h, victim))
    )
    for url in (product_image, victim_avatar):
        code, body, _ = h.request(
            "PUT", "/api/v1/auth/updatedetails", {"avatar": url}, token=mallory
        )
        assert code == 403 and body["error"] == "You can only use an image you uploaded yourself"
    code, body, _ = h.request(
        "PUT", "/api/v1/auth/updatedetails", {"avatar": "http://cdn.test/me.png"}, token=mallory
    )
    assert code == 400
    code, body, _ = h.request(
        "PUT", "/api/v1/auth/updatedetails", {"avatar": "https://cdn.test/me.png"}, token=mallory
    )
    assert code == 200 and body["data"]["avatar"] == "https://cdn.test/me.png"
    h.request(
        "PUT", "/api/v1/auth/updatedetails", {"avatar": "https://cdn.test/2.png"}, token=mallory
    )
    assert h.store.uploads.names() == sorted(["a" * 32 + ".png", "b" * 32 + ".png"])


def test_an_own_upload_can_be_used_again_and_goes_when_unused() -> None:
    """A user's own file may become their avatar; when nothing uses it any
    more it is deleted."""
    h = Harness()
    token = h.register("own@example.com")
    me = user_id(h, token)
    mine = put_file(h, "c" * 32 + ".png", me)  # uploaded, not used yet
    code, body, _ = h.request("PUT", "/api/v1/auth/updatedetails", {"avatar": mine}, token=token)
    assert code == 200 and body["data"]["avatar"] == mine
    h.request(
        "PUT", "/api/v1/auth/updatedetails", {"avatar": "https://cdn.test/x.png"}, token=token
    )
    assert h.store.uploads.names() == []


def test_an_image_shared_by_two_documents_stays_until_both_let_go() -> None:
    """A product that reuses another's image, then drops it, deletes nothing;
    the file goes when its last user does."""
    h = Harness()
    admin = h.admin()
    code, cat, _ = h.request("POST", "/api/v1/categories", {"name": "Sky"}, token=admin)
    category = cat["data"]["_id"]
    shared = put_file(h, "d" * 32 + ".png", user_id(h, admin))
    first = h.request(
        "POST",
        "/api/v1/products",
        {"name": "A", "price": 10, "category": category, "existingImages": [shared]},
        token=admin,
    )[1]["data"]
    second = h.request(
        "POST",
        "/api/v1/products",
        {"name": "B", "price": 10, "category": category, "existingImages": [shared]},
        token=admin,
    )[1]["data"]
    code, _, _ = h.request(
        "PUT", f"/api/v1/products/{second['_id']}", {"clearImages": True}, token=admin
    )
    assert code == 200 and h.store.uploads.names() == ["d" * 32 + ".png"]
    assert h.request("DELETE", f"/api/v1/products/{second['_id']}", token=admin)[0] == 200
    assert h.store.uploads.names() == ["d" * 32 + ".png"]
    assert h.request("DELETE", f"/api/v1/products/{first['_id']}", token=admin)[0] == 200
    assert h.store.uploads.names() == []


def test_files_from_before_references_are_never_deleted() -> None:
    """An upload stored before owners and references were kept is left in
    place when a document stops using it (a file kept, never one lost)."""
    h = Harness()
    admin = h.admin()
    name = "e" * 32 + ".png"
    h.store.uploads.add_legacy(name, PNG, "image/png")
    code, made, _ = h.request(
        "POST", "/api/v1/banners", {"title": "Old", "image": BASE + name}, token=admin
    )
    assert code == 201
    assert h.request("DELETE", f"/api/v1/banners/{made['data']['_id']}", token=admin)[0] == 200
    assert h.store.uploads.names() == [name]


def test_a_missing_upload_cannot_be_referenced() -> None:
    """A URL of ours whose file is gone is a 400, and nothing is written."""
    h = Harness()
    admin = h.admin()
    code, body, _ = h.request(
        "POST", "/api/v1/banners", {"title": "Gone", "image": BASE + "f" * 32 + ".png"}, token=admin
    )
    assert code == 400 and "no longer exists" in body["error"]
    assert h.request("GET", "/api/v1/banners", token=admin)[1]["data"] == []

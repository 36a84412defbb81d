"""``crackershop seed``: a demo catalogue and an admin account.

Writes with pymongo (a short-lived command, not a server) and upserts by
name, so running it twice never duplicates anything. The database is
MONGO_URI, the running server's embedded database (whose address it
publishes in DATA_DIR.uri), or an embedded database started for the
duration of the command.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

from crackershop.config import Config, from_argv

CATEGORIES: list[tuple[str, str, list[str]]] = [
    (
        "Sparklers",
        "Hand-held sparklers in every length",
        [
            "Electric Sparkler",
            "Colour Sparkler",
            "Green Sparkler",
            "Red Sparkler",
            "Crackling Sparkler",
        ],
    ),
    (
        "Flower Pots",
        "Fountains that bloom in colour",
        [
            "Flower Pot Small",
            "Flower Pot Big",
            "Flower Pot Special",
            "Colour Koti",
            "Tricolour Pot",
        ],
    ),
    (
        "Ground Spinners",
        "Chakkars that spin on the ground",
        [
            "Ground Chakkar Big",
            "Ground Chakkar Special",
            "Ground Chakkar Deluxe",
            "Wire Chakkar",
            "Spinning Top",
        ],
    ),
    (
        "Rockets",
        "Sky rockets with whistles and stars",
        ["Baby Rocket", "Rocket Bomb", "Lunik Express", "Two Sound Rocket", "Whistling Rocket"],
    ),
    (
        "Bombs",
        "Sound crackers",
        ["Bullet Bomb", "Hydro Bomb", "Atom Bomb", "King of Kings", "Classic Bomb"],
    ),
    (
        "Garland Crackers",
        "Strings of crackers",
        ["1000 Wala", "2000 Wala", "5000 Wala", "10000 Wala", "Deluxe Garland"],
    ),
    (
        "Fancy Crackers",
        "Aerial shows and novelties",
        ["Peacock Feather", "Butterfly", "Magic Whip", "Photo Flash", "Colour Smoke"],
    ),
    (
        "Kids Special",
        "Gentle crackers for children",
        ["Pencil", "Snake Tablet", "Roll Cap", "Twinkling Star", "Bijili"],
    ),
    (
        "Multicolor Shots",
        "Repeating aerial shots",
        ["12 Shots", "30 Shots", "60 Shots", "120 Shots", "240 Shots"],
    ),
    (
        "Gift Boxes",
        "Assorted family boxes",
        [
            "Family Pack",
            "Deluxe Gift Box",
            "Kids Gift Box",
            "Premium Gift Box",
            "Mega Celebration Box",
        ],
    ),
]
VARIANTS = ["", " Deluxe", " Super"]
PACKS = ["1 box", "5 pcs", "10 pcs", "1 pkt", "25 pcs"]


def demo_catalogue(seed: int = 2026) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each category with its products: 10 categories, 150 products."""
    rng = random.Random(seed)  # noqa: S311 (demo data, not secrets)
    for name, description, items in CATEGORIES:
        category = {"name": name, "description": description, "status": "Active"}
        products = []
        for item in items:
            for variant in VARIANTS:
                price = rng.choice([40, 60, 80, 100, 120, 150, 200, 250, 300, 450, 600, 900])
                discount = round(price * rng.choice([0.5, 0.6, 0.7, 0.8]), 2)
                products.append(
                    {
                        "name": f"{item}{variant}",
                        "price": float(price),
                        "discountPrice": discount,
                        "quantity": rng.randint(20, 500),
                        "description": f"{item}{variant}: {description.lower()}.",
                        "pack": rng.choice(PACKS),
                        "isFeatured": rng.random() < 0.15,
                        "isDiwaliSpecial": rng.random() < 0.25,
                        "status": "Active",
                        "images": [],
                    }
                )
        yield category, products


def is_empty(db: Any) -> bool:
    return db.products.estimated_document_count() == 0 and (
        db.categories.estimated_document_count() == 0
    )


def seed(
    db: Any,
    admin_email: str,
    admin_password: Optional[str],
    rounds: int = 10,
    progress: Any = None,
) -> dict[str, Any]:
    """Upsert the catalogue and the admin; returns what was done."""
    now = datetime.now(timezone.utc)
    created = {"categories": 0, "products": 0}
    catalogue = list(demo_catalogue())
    for index, (category, products) in enumerate(catalogue):
        result = db.categories.find_one_and_update(
            {"name": category["name"]},
            {"$setOnInsert": {**category, "createdAt": now, "updatedAt": now}},
            upsert=True,
            return_document=True,
        )
        created["categories"] += 1
        for offset, product in enumerate(products):
            stamp = now - timedelta(minutes=index * 100 + offset)
            db.products.update_one(
                {"name": product["name"]},
                {
                    "$setOnInsert": {
                        **product,
                        "category": result["_id"],
                        "createdAt": stamp,
                        "updatedAt": stamp,
                    }
                },
                upsert=True,
            )
            created["products"] += 1
            if progress is not None:
                progress.update(1)
    generated = None
    existing = db.users.find_one({"email": admin_email})
    password = admin_password
    if existing is None and password is None:
        password = generated = secrets.token_urlsafe(12)
    fields: dict[str, Any] = {"role": "admin", "status": "Active", "updatedAt": now}
    if password is not None:
        import bcrypt

        hashed = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds))
        fields["password"] = hashed.decode("ascii")
    db.users.update_one(
        {"email": admin_email},
        {
            "$set": fields,
            "$setOnInsert": {"name": "Shop Admin", "addresses": [], "createdAt": now},
        },
        upsert=True,
    )
    return {**created, "admin": admin_email, "generated_password": generated}


def product_count() -> int:
    return sum(len(products) for _, products in demo_catalogue())


@contextmanager
def database(config: Config) -> Iterator[Any]:
    """A pymongo database: MONGO_URI, the running server's embedded database,
    or an embedded database started for the duration of the command."""
    import pymongo

    from crackershop.children.embedded import find_secantusd, free_port, uri_file
    from crackershop.store.mongo import database_name

    if config.mongo_uri:
        client: Any = pymongo.MongoClient(config.mongo_uri, serverSelectionTimeoutMS=10000)
        yield client[database_name(config.mongo_uri, config.mongo_db)]
        client.close()
        return
    published = uri_file(Path(config.data_dir))
    if published.is_file():
        uri = published.read_text().strip()
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000)
        try:
            client.admin.command("ping")
        except pymongo.errors.PyMongoError:
            client.close()
        else:
            yield client[config.mongo_db]
            client.close()
            return
    program = find_secantusd()
    if program is None:
        raise SystemExit("crackershop: the embedded database is not installed; set MONGO_URI")
    Path(config.data_dir).mkdir(parents=True, exist_ok=True)
    port = free_port()
    child = subprocess.Popen(  # noqa: S603 (our own executable, fixed arguments)
        [
            *program,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            config.data_dir,
            "--log-level",
            "WARNING",
        ],
    )
    try:
        # ready when it answers a ping (server selection waits for that)
        client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=60000)
        try:
            client.admin.command("ping")
        except pymongo.errors.PyMongoError:
            raise SystemExit("crackershop: the embedded database did not start") from None
        yield client[config.mongo_db]
        client.close()
    finally:
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()


def seed_command(argv: Sequence[str]) -> int:
    from tqdm import tqdm

    parser = argparse.ArgumentParser(prog="crackershop seed", description="Seed demo data.")
    parser.add_argument(
        "--admin-email", default=os.environ.get("ADMIN_EMAIL", "admin@crackershop.local")
    )
    parser.add_argument("--admin-password", default=os.environ.get("ADMIN_PASSWORD"))
    parser.add_argument(
        "--force",
        action="store_true",
        help="seed a database that already has data (upserts, no duplicates)",
    )
    args, rest = parser.parse_known_args(argv)
    if args.admin_password is not None and len(args.admin_password) < 8:
        print("crackershop: --admin-password must be at least 8 characters", file=sys.stderr)
        return 2
    config = from_argv(rest)
    with database(config) as db:
        if not args.force and not is_empty(db):
            print(
                "crackershop: the database already has products or categories; "
                "use --force to add the demo catalogue anyway (nothing is duplicated)",
                file=sys.stderr,
            )
            return 1
        with tqdm(total=product_count(), unit="product", desc="seeding") as bar:
            done = seed(
                db, args.admin_email.lower(), args.admin_password, config.bcrypt_rounds, bar
            )
    print(f"seeded {done['categories']} categories and {done['products']} products")
    if done["generated_password"]:
        print(f"admin account: {done['admin']} password: {done['generated_password']}")
        print("(shown once; change it after logging in)")
    else:
        print(f"admin account: {done['admin']}")
    return 0

"""The benchmark's workload: a seeded mix of commands, cut into real-shaped SQS invocations.

Stdlib only, so the memory probe can use it under the Lambda-like python3.13 as well.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

CONTACT_SHARE = 0.60
EVENT_SHARE = 0.30  # the rest (10%) are product upserts
PRODUCTS_PER_COMMAND = (1, 20)
RECORDS_PER_INVOCATION = 500
SENT_AT_MS = 1_764_095_400_000
QUEUE_ARN = "arn:aws:sqs:eu-central-1:123456789012:salesmanago-bridge-bench-commands"
EVENT_TYPES = ("PURCHASE", "CART", "VISIT", "LOGIN", "OTHER")
# Bulk limits of SALESmanago (the template's CONTACT_/EVENT_/PRODUCT_BATCH_SIZE): the lower bound's yardstick.
BULK_LIMITS = {"contact.upsert": 400, "event.create": 1000, "products.upsert": 100, "contact.delete": 1}


def group_config(index: int, url: str) -> dict[str, Any]:
    """One tenant of the bench, pointed at the sandbox at ``url``; the field maps get used."""
    return {
        "client_id": f"bench-client-{index}",
        "api_secret": f"bench-secret-{index}",
        "owner": f"owner{index}@bench-shop.example.com",
        "endpoint": url,
        "products_api_key": f"bench-products-key-{index}",
        "catalog_id": str(uuid.UUID(int=index + 1)),
        "products_endpoint": url,
        "location": f"bench_shop_{index}",
        "field_map": {
            "contact.upsert": {"loyalty_tier": "properties.loyalty"},
            "event.create": {"order_channel": "detail5"},
            "products.upsert": {"ean": "detail4"},
        },
    }


def groups(count: int, url: str) -> dict[str, dict[str, Any]]:
    return {f"bench-{index}": group_config(index, url) for index in range(count)}


@dataclass
class Workload:
    """Commands in arrival order and the SQS events that carry them."""

    bodies: list[dict[str, Any]]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def commands(self) -> int:
        return len(self.bodies)

    def lower_bound_requests(self) -> int:
        """Sum over invocations and (group, action) in each of ceil(items / bulk limit)."""
        total = 0
        for start in range(0, len(self.bodies), RECORDS_PER_INVOCATION):
            items: Counter[tuple[str, str]] = Counter()
            for body in self.bodies[start : start + RECORDS_PER_INVOCATION]:
                count = len(body["data"]) if body["action"] == "products.upsert" else 1
                items[(body["group_key"], body["action"])] += count
            total += sum(math.ceil(n / BULK_LIMITS[action]) for (_, action), n in items.items())
        return total

    def mix(self) -> dict[str, int]:
        return dict(Counter(body["action"] for body in self.bodies))


def _contact(rng: random.Random, email: str, group_key: str) -> dict[str, Any]:
    n = rng.randrange(10**6)
    return {
        "action": "contact.upsert",
        "group_key": group_key,
        "data": {
            "email": email,
            "name": f"Customer {n}",
            "phone": f"+48 600 {n % 1000:03d} {n % 997:03d}",
            "company": f"Company {n % 500}",
            "city": rng.choice(("Warszawa", "Kraków", "Gdańsk", "Poznań")),
            "country": "PL",
            "externalId": f"crm-{n}",
            "state": "CUSTOMER",
            "tags": ["NEWSLETTER", rng.choice(("VIP", "B2C", "B2B"))],
            "properties": {"segment": rng.choice(("gold", "silver")), "source": "bench"},
            "lang": "pl",
            "forceOptIn": True,
            "loyalty_tier": rng.choice(("platinum", "gold")),
        },
    }


def _event(rng: random.Random, email: str, group_key: str, order: str) -> dict[str, Any]:
    return {
        "action": "event.create",
        "group_key": group_key,
        "id": order,
        "data": {
            "email": email,
            "contactExtEventType": rng.choice(EVENT_TYPES),
            "description": f"Order {order}",
            "products": [f"SKU-{rng.randrange(10**5)}", f"SKU-{rng.randrange(10**5)}"],
            "value": round(rng.uniform(5, 500), 2),
            "externalId": order,
            "shopDomain": "shop.example.com",
            "detail1": "card",
            "order_channel": rng.choice(("mobile", "web")),
            "date": "2026-11-25T18:30:00Z",
        },
    }


def _product(rng: random.Random, product_id: str) -> dict[str, Any]:
    return {
        "id": product_id,
        "name": f"Product {product_id}",
        "description": "Slim-fit linen shirt, made in Poland",
        "category": rng.choice(("Shirts", "Accessories", "Shoes")),
        "sub_category": "Linen",
        "brand": "Nordlys",
        "sex": 1,
        "price": 199.0,
        "special_price": 149.5,
        "url": f"https://shop.example.com/p/{product_id.lower()}",
        "image_url": f"https://cdn.shop.example.com/{product_id.lower()}.jpg",
        "stock_available": rng.randrange(50),
        "color": "white",
        "season": "summer",
        "ean": "5901234123457",
    }


def commands(count: int, group_count: int, *, seed: int, tag: str) -> list[dict[str, Any]]:
    """``count`` command bodies: no e-mail or product id repeats; ``tag`` keeps runs apart."""
    rng = random.Random(seed)
    group_keys = [f"bench-{index}" for index in range(group_count)]
    bodies = []
    for serial in range(count):
        group_key = rng.choice(group_keys)
        email = f"{tag}.{serial}@customer.example.com"
        draw = rng.random()
        if draw < CONTACT_SHARE:
            bodies.append(_contact(rng, email, group_key))
        elif draw < CONTACT_SHARE + EVENT_SHARE:
            bodies.append(_event(rng, email, group_key, f"order-{tag}-{serial}"))
        else:
            items = rng.randint(*PRODUCTS_PER_COMMAND)
            data = [_product(rng, f"{tag}-{serial}-{n}") for n in range(items)]
            bodies.append({"action": "products.upsert", "group_key": group_key, "data": data})
    return bodies


def sqs_record(body: dict[str, Any], serial: int) -> dict[str, Any]:
    """One record exactly as the SQS event source mapping delivers it."""
    text = json.dumps(body)
    return {
        "messageId": str(uuid.UUID(int=serial + 1)),
        "receiptHandle": f"AQEB{serial:012d}==",
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(SENT_AT_MS + serial),
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": str(SENT_AT_MS + serial + 500),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "eu-central-1",
    }


def workload(count: int, group_count: int, *, seed: int, tag: str) -> Workload:
    """The commands of a run and its SQS events of ``RECORDS_PER_INVOCATION`` records each."""
    bodies = commands(count, group_count, seed=seed, tag=tag)
    records = [sqs_record(body, serial) for serial, body in enumerate(bodies)]
    events = [
        {"Records": records[start : start + RECORDS_PER_INVOCATION]}
        for start in range(0, len(records), RECORDS_PER_INVOCATION)
    ]
    return Workload(bodies, events)

"""Synthetic customers in bulk, for benchmarks and index tests:
``python -m services.customers.seed 1000000``.

Each customer is what ``create_customer`` would have made of it, but written many at a time:
per batch, one transaction with multi-row inserts of the subject keys, the
``customer.registered`` events (personal fields sealed, validated against the catalogue) and
the read-model rows (the aggregate folded from those events, as the live projection and the
rebuild fold it). Names are realistic: mostly Chinese (common surnames and given-name
characters), some Latin, some with a company.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from services.customers import tables
from services.customers.domain import Customer
from services.customers.events import CUSTOMER_STREAM, registry
from services.customers.personal import CustomerVault, seal_payload, subject_keys
from services.customers.projections import TAKE_WRITERS_LOCK, customer_row
from shared.errors import EventSchemaError
from shared.eventstore import NOTIFY_SQL, events_table

BATCH = 2000
REGISTERED = "customer.registered"
#: What a VACUUM would do after a bulk load: each GIN index's pending list merged into it.
MERGE_PENDING_GIN_ENTRIES = text(
    "SELECT count(gin_clean_pending_list(i.indexrelid)) FROM pg_index i "
    "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
    "WHERE i.indrelid = CAST('customers' AS regclass) AND am.amname = 'gin'"
)
#: One payload in this many is checked against the event catalogue in full.
SAMPLE = 100

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤穆"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "慕容")
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鑫斌宇浩凯健俊帆帅"
    "旭宁龙林欣佳琪晨阳博文辉晓磊雪梅婷倩颖琳瑶怡欢蕾璐晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡"
    "婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢"
    "馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝丽阳妮宝贝初程梵罡恒鸿桦骅剑娇纪宽苛灵玛媚琪"
)
LATIN_FIRST = (
    "James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony "
    "Betty Mark Sandra Paul Ashley Steven Emily Andrew Donna Kevin Michelle Brian Carol George "
    "Amanda Oliver Sophie Lukas Emma Hans Anna Pierre Camille José Lucía Marco Giulia"
).split()
LATIN_LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Lewis Robinson Walker Young Allen King Wright Scott Müller Schmidt Dubois "
    "Rossi Bianchi Fernández Nakamura Kim Nguyen"
).split()
CITIES = (
    ("CN", "上海", "上海", "浦东新区", "200120"),
    ("CN", "北京", "北京", "朝阳区", "100020"),
    ("CN", "广东", "深圳", "南山区", "518000"),
    ("CN", "广东", "广州", "天河区", "510000"),
    ("CN", "浙江", "杭州", "西湖区", "310000"),
    ("CN", "四川", "成都", "锦江区", "610000"),
    ("CN", "江苏", "南京", "鼓楼区", "210000"),
    ("CN", "湖北", "武汉", "江汉区", "430000"),
    ("HK", None, "Hong Kong", "Central", None),
    ("GB", "England", "London", "Camden", "NW1 8NH"),
    ("US", "CA", "San Francisco", None, "94105"),
)
STREETS = ("南京路", "人民路", "中山路", "解放路", "建设路", "和平路", "长江路", "Baker Street")
COMPANY_WORDS = ("华", "信", "达", "恒", "瑞", "鼎", "博", "盛", "康", "泰", "安", "通", "德", "嘉")
COMPANY_KINDS = ("科技", "贸易", "文化", "餐饮", "电子", "物流", "咨询", "服饰")
LATIN_COMPANIES = ("Globex", "Initech", "Umbrella", "Hooli", "Acme", "Stark", "Wayne", "Vandelay")
CATEGORIES = ("tea", "wine", "apparel", "electronics", "cosmetics", "books", "toys", "sports")
BRANDS = ("Moutai", "Huawei", "Xiaomi", "Li-Ning", "Anta", "Apple", "Nike", "Lancôme")
TAGS = ("vip", "wholesale", "retail", "newsletter", "b2b", "lead", "重要客户", "回头客")
MOBILE_PREFIXES = (
    "130",
    "131",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "158",
    "186",
    "188",
)


def chinese_name(rng: random.Random) -> str:
    surname = rng.choice(COMPOUND_SURNAMES) if rng.random() < 0.02 else rng.choice(SURNAMES)
    return surname + "".join(rng.choice(GIVEN) for _ in range(1 if rng.random() < 0.35 else 2))


def latin_name(rng: random.Random) -> str:
    return f"{rng.choice(LATIN_FIRST)} {rng.choice(LATIN_LAST)}"


def company_name(rng: random.Random, city: str) -> str:
    if rng.random() < 0.7:
        words = "".join(rng.sample(COMPANY_WORDS, 2))
        return f"{city}{words}{rng.choice(COMPANY_KINDS)}有限公司"
    return f"{rng.choice(LATIN_COMPANIES)} {rng.choice(('Ltd', 'Inc', 'GmbH', 'Trading'))}"


def synthetic_data(rng: random.Random, index: int) -> dict[str, Any]:
    """One customer's ``create_customer`` data (already normalised: E.164, primaries)."""
    chinese = rng.random() < 0.8
    name = chinese_name(rng) if chinese else latin_name(rng)
    country, region, city, district, postal_code = rng.choice(CITIES if chinese else CITIES[-3:])
    is_company = rng.random() < 0.1
    company = company_name(rng, city) if is_company or rng.random() < 0.25 else None
    handle = f"user{index}.{uuid.UUID(int=rng.getrandbits(128)).hex[:8]}"
    mobile = f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
    data: dict[str, Any] = {
        "kind": "company" if is_company else "person",
        "name": company if is_company else name,
        "company": None if is_company else company,
        "emails": [
            {
                "address": f"{handle}@example.com",
                "label": rng.choice(("work", "home")),
                "primary": True,
            }
        ],
        "phones": [{"number": mobile, "label": "mobile", "primary": True}],
        "addresses": [
            {
                "label": "home",
                "country": country,
                "region": region,
                "city": city,
                "district": district,
                "street": f"{rng.randrange(1, 999)}号{rng.choice(STREETS)}",
                "postal_code": postal_code,
                "primary": True,
            }
        ],
        "preferred_channel": rng.choice(("email", "phone", "sms", "wechat", "none")),
        "language": "zh-CN" if chinese else "en",
        "preferences": {
            "categories": rng.sample(CATEGORIES, rng.randrange(0, 3)),
            "brands": rng.sample(BRANDS, rng.randrange(0, 3)),
        },
        "tags": rng.sample(TAGS, rng.randrange(0, 3)),
        "source": rng.choice(("web", "store", "trade fair", "referral", None)),
    }
    if rng.random() < 0.3:
        data["preferences"].update(
            price_min=rng.randrange(0, 50) * 1000, price_max=rng.randrange(50, 500) * 1000
        )
        data["preferences"]["currency"] = "CNY"
    return data


def _batches(count: int, size: int) -> Iterator[range]:
    for start in range(0, count, size):
        yield range(start, min(count, start + size))


@dataclass
class Batch:
    """What one batch inserts: subject keys, ``customer.registered`` events, read-model rows."""

    keys: list[dict[str, Any]]
    events: list[dict[str, Any]]
    rows: list[dict[str, Any]]


def prepare_batch(indexes: range, seed: int, start: datetime, span: timedelta) -> Batch:
    """Make one batch without touching the database, so that batches can be made in other
    processes while this one inserts. The data depends only on ``seed`` and the indexes (the
    ids are new each time)."""
    rng = random.Random(f"{seed}:{indexes.start}")
    vault = CustomerVault(None)  # new subjects only: their keys never leave this object
    ids = [str(uuid.uuid4()) for _ in indexes]
    keys = vault.new_keys(ids)
    events, rows = [], []
    metadata = {"actor_id": "seed", "actor_kind": "system"}
    schema = registry.schema(REGISTERED, 1)
    for number, (customer_id, index) in enumerate(zip(ids, indexes, strict=True)):
        at = start + span * rng.random()
        [(event_type, payload)] = Customer.register(customer_id, synthetic_data(rng, index), None)
        # Every payload comes from the same code: check a sample against the catalogue in full
        # (plain values and sealed payload), as ``registry.new_event`` would check each one.
        check = number % SAMPLE == 0
        sealed = seal_payload(vault, event_type, 1, payload, check=check)
        if check and schema.dump(schema.load(sealed)) != sealed:
            raise EventSchemaError(f"{event_type} payload does not match its schema")
        events.append(
            {
                "event_id": uuid.uuid4(),
                "stream_type": CUSTOMER_STREAM,
                "stream_id": customer_id,
                "stream_version": 1,
                "event_type": event_type,
                "schema_version": 1,
                "payload": sealed,
                "metadata": metadata,
                "occurred_at": at,
            }
        )
        customer = Customer(customer_id)
        customer.apply(event_type, payload, at)
        rows.append({**customer_row(customer), "order_count": 0})
    return Batch(keys, events, rows)


def insert_batch(conn: Connection, batch: Batch) -> int:
    """Insert one prepared batch in the caller's transaction, as the service's writers do;
    its index entries gather in the GIN pending lists up to PostgreSQL's default 4 MB (the
    services' connections merge theirs at a smaller size, for short writes)."""
    conn.execute(text("SET LOCAL gin_pending_list_limit = '4MB'"))
    conn.execute(TAKE_WRITERS_LOCK)
    conn.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))
    conn.execute(insert(subject_keys), batch.keys)
    conn.execute(insert(events_table), batch.events)
    conn.execute(insert(tables.customers), batch.rows)
    conn.execute(text(NOTIFY_SQL))
    return len(batch.rows)


def _prepared(jobs: list[tuple[range, int, datetime, timedelta]], workers: int) -> Iterator[Batch]:
    """The batches in order; with ``workers`` > 1 made by that many processes, at most two
    each ahead of the inserts."""
    if workers <= 1:
        for job in jobs:
            yield prepare_batch(*job)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        pending: deque[Future[Batch]] = deque()
        for job in jobs:
            pending.append(pool.submit(prepare_batch, *job))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def seed_customers(
    session: Session,
    count: int,
    seed: int = 0,
    batch: int = BATCH,
    years: float = 3.0,
    progress=None,
    workers: int = 1,
) -> int:
    """Insert ``count`` synthetic customers, committing every ``batch``; then merge the GIN
    indexes' pending lists and ANALYZE, so that searches neither scan megabytes of pending
    entries nor plan blind. The data is the same for a given ``seed`` and ``batch``
    whatever ``workers`` (processes that prepare batches while this one inserts: sealing,
    pinyin and the read-model rows are most of the work). Returns the count."""
    span = timedelta(days=365 * years)
    start = datetime.now(UTC) - span
    jobs = [(indexes, seed, start, span) for indexes in _batches(count, batch)]
    done = 0
    for prepared in _prepared(jobs, workers):
        done += insert_batch(session.connection(), prepared)
        session.commit()
        if progress:
            progress(done, count)
    session.execute(MERGE_PENDING_GIN_ENTRIES)
    session.execute(text("ANALYZE customers"))
    session.commit()
    return done


def main(argv: list[str] | None = None) -> int:
    from shared.config import settings
    from shared.db import create_service_engine

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes preparing batches"
    )
    args = parser.parse_args(argv)
    engine = create_service_engine(
        settings().service_url("customers"), schema="customers", pool_size=1
    )
    try:
        with Session(engine) as session:
            seed_customers(
                session,
                args.count,
                args.seed,
                workers=args.workers,
                progress=lambda done, total: print(f"\r{done}/{total}", end="", flush=True),
            )
    finally:
        engine.dispose()
    print(f"\nseeded {args.count} customers")
    return 0


if __name__ == "__main__":
    sys.exit(main())

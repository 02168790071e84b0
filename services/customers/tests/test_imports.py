"""Bulk import through the real service: ``shared.importer.run_import`` (the driver the gateway
and the CLI use) calling the customers service over RPC (``ClusterRpcProxy``) on files written
here: CSV in UTF-8 with a BOM and in GBK, XLSX; create / update / upsert matched on e-mail,
phone and external id; bad rows; a broken file; progress; revert; 5,000 rows."""

import csv
import uuid
from datetime import datetime

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import worker_factory
from openpyxl import Workbook
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.customers.import_columns import map_columns, parse_row
from services.customers.service import CustomersService
from services.customers.tests.conftest import (
    actor_of,
    as_,
    principal,
    unique_email,
    unique_mobile,
    unique_tag,
)
from services.customers.tests.test_rebuild import rebuild_and_compare
from shared.errors import BadRequest, Conflict, Forbidden, NotFound, RuleViolation
from shared.importer import run_import


@pytest.fixture(scope="module")
def cluster(customers_container, nameko_config):
    with ClusterRpcProxy(nameko_config, timeout=120) as proxy:
        yield proxy


@pytest.fixture
def call(cluster):
    """``call(method, **kwargs)``: the customers service over RPC, as the driver calls it."""

    def call(method, **kwargs):
        return getattr(cluster.customers, method)(**kwargs)

    return call


def write_csv(path, rows, encoding="utf-8-sig"):
    with open(path, "w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def write_xlsx(path, rows):
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def do_import(call, path, who, mode="upsert", match_on="email", **options):
    return run_import(
        call,
        path,
        actor=actor_of(who),
        import_id=str(uuid.uuid4()),
        filename=path.name,
        mode=mode,
        match_on=match_on,
        **options,
    )


def tagged(customers, viewer, tag, **filters):
    """The customers with ``tag``, by name."""
    found = customers.search_customers(viewer=viewer, tag=tag, limit=200, **filters)["items"]
    return {item["name"]: item for item in found}


def all_rejections(customers, viewer, import_id):
    items, cursor = [], None
    while True:
        page = customers.import_rejections(
            viewer=viewer, import_id=import_id, limit=2, cursor=cursor
        )
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


def comparable(customer):
    return {k: v for k, v in customer.items() if k not in ("version", "updated_at")}


# -- columns and cells (pure) -------------------------------------------------------------------

DEFINITIONS = {
    "level": {"type": "choice", "label": "会员等级", "options": ["Gold", "Silver"]},
    "vip": {"type": "boolean", "label": "VIP"},
    "since": {"type": "date", "label": "开始日期"},
    "visits": {"type": "number", "label": "到访次数"},
}


def test_columns_are_mapped_by_alias_key_or_label_case_insensitively():
    header = ["NAME", "E-Mail", "手机", "电话", "External ID", "Preferred Channel", "会员等级"]
    header += ["vip", "邮政编码", "Tags", "标签"]
    mapping = map_columns(header, "upsert", "external_id", DEFINITIONS).columns
    assert mapping == {
        "NAME": "name",
        "E-Mail": "email",
        "手机": "phone",
        "电话": "phone",  # several phone (e-mail, tag) columns add up
        "External ID": "external_id",
        "Preferred Channel": "preferred_channel",
        "会员等级": "attribute:level",
        "vip": "attribute:vip",
        "邮政编码": "postal_code",
        "Tags": "tags",
        "标签": "tags",
    }


def test_an_exported_file_imports_again_as_it_is():
    """The export's id, owner_id, status, created_at and updated_at refused the whole file
    ("Unknown column"); they are read past (an import cannot set them)."""
    header = ["id", "kind", "name", "email", "owner_id", "status", "created_at", "updated_at"]
    mapping = map_columns(header, "upsert", "email", DEFINITIONS)
    row = {
        "id": "9f0c…",
        "kind": "person",
        "name": "王小明",
        "email": "wxm@example.com",
        "owner_id": "someone",
        "status": "archived",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-02T00:00:00Z",
    }
    parsed = parse_row(row, mapping, DEFINITIONS)
    assert parsed.errors == {}
    assert parsed.given == {"kind", "name", "emails"}


def test_every_problem_with_the_columns_at_once():
    definitions = {**DEFINITIONS, "grade": {"type": "string", "label": "会员等级"}}
    with pytest.raises(BadRequest) as caught:
        map_columns(["名字", "姓名", "name", "", "会员等级"], "update", "email", definitions)
    assert caught.value.extra["errors"]["columns"] == [
        "Unknown column: 名字",
        "Column 4 has no name.",
        "Column 会员等级 could be any of the attributes grade, level.",
        "Columns 姓名 and name both give name.",
        "Matching on email needs one of the columns email, emails, e-mail, 邮箱, 电子邮件, "
        "电子邮箱.",
    ]


def test_cells_become_customer_data():
    header = ["姓名", "邮箱", "手机", "标签", "类型", "语言", "首选渠道", "国家", "城市"]
    header += ["会员等级", "VIP", "开始日期", "到访次数", "备注"]
    columns = map_columns(header, "create", "email", DEFINITIONS)
    cells = ["张伟", "A@Example.COM；b@example.com", "138 1234 5678, +44 20 7946 0018"]
    cells += ["vip、新客 b2b", "公司", "英语", "短信", "中国", "北京", "gold", "是"]
    cells += ["2026/3/1", "1,200", "  "]
    parsed = parse_row(dict(zip(header, cells, strict=True)), columns, DEFINITIONS)
    assert parsed.errors == {}
    data = parsed.data
    assert [e["address"] for e in data["emails"]] == ["A@example.com", "b@example.com"]
    assert [p["number"] for p in data["phones"]] == ["+8613812345678", "+442079460018"]
    assert data["tags"] == ["vip", "新客", "b2b"]
    assert (data["kind"], data["language"], data["preferred_channel"]) == ("company", "en", "sms")
    assert data["addresses"][0]["country"] == "CN" and data["addresses"][0]["city"] == "北京"
    assert parsed.attributes == {
        "level": "Gold",
        "vip": True,
        "since": "2026-03-01",
        "visits": 1200,
    }
    assert "preferences" not in parsed.given  # an empty cell says nothing


def test_bad_cells_are_reasons_keyed_by_column():
    header = ["姓名", "邮箱", "手机", "国家", "VIP", "开始日期", "首选渠道"]
    columns = map_columns(header, "create", "email", DEFINITIONS)
    cells = ["x" * 201, "ok@example.com, nope", "12345", "ZZ", "maybe", "2026-02-30", "fax"]
    values = {**dict(zip(header, cells, strict=True)), "": "spill"}
    reasons = parse_row(values, columns, DEFINITIONS).errors
    assert reasons["姓名"] == ["Length must be between 1 and 200."]
    assert reasons["邮箱"] == ["nope: Not a valid e-mail address."]
    assert reasons["手机"][0].startswith("12345: Not a valid phone number")
    assert reasons["国家"] == ["Not an ISO 3166-1 alpha-2 country code, like CN."]
    assert reasons["VIP"] == ["Must be yes or no (是 or 否, true or false)."]
    assert reasons["开始日期"] == ["Must be a date, like 2026-03-01."]
    assert list(reasons["首选渠道"]) and reasons["_row"] == [
        "Cells beyond the last named column: spill"
    ]


# -- files --------------------------------------------------------------------------------------


def test_utf8_csv_with_bom_and_chinese_headers(tmp_path, call, customers, admin):
    tag, external_id = unique_tag(), f"crm-{uuid.uuid4().hex[:8]}"
    key, label = f"level_{uuid.uuid4().hex[:6]}", f"会员等级{uuid.uuid4().hex[:4]}"
    customers.define_attribute(
        actor=actor_of(admin), key=key, type="choice", label=label, options=["金卡", "银卡"]
    )
    mobile, office = unique_mobile(), unique_mobile()
    emails = [unique_email("li"), unique_email("li2")]
    header = ["姓名", "类型", "公司", "邮箱", "手机", "电话", "标签", "客户编号", "来源"]
    header += ["语言", "首选渠道", "国家", "省份", "城市", "区县", "地址", "邮编", "备注", label]
    path = write_csv(
        tmp_path / "客户.csv",
        [
            header,
            [
                "李娜",
                "个人",
                "",
                f"{emails[0]}; {emails[1]}",
                mobile,
                office,
                f"{tag}，vip",
                external_id,
                "展会",
                "中文",
                "微信",
                "中国",
                "广东省",
                "深圳",
                "南山区",
                "科技园 1 号",
                "518000",
                "喜欢绿茶",
                "金卡",
            ],
            ["华为技术", "公司", "华为", "", "", "", tag, "", "", "英文"] + [""] * 9,
        ],
    )
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    summary = do_import(call, path, admin, mode="create")
    assert (summary["status"], summary["created"], summary["rejected"]) == ("completed", 2, 0)
    assert summary["total_rows"] == summary["processed_rows"] == 2
    found = tagged(customers, admin, tag)
    li = found["李娜"]
    local, _, domain = emails[0].partition("@")
    assert li["emails"][0]["address"] == f"{local}@{domain.lower()}"
    assert len(li["emails"]) == 2 and li["emails"][0]["primary"]
    assert [p["number"] for p in li["phones"]] == [f"+86{mobile}", f"+86{office}"]
    assert li["tags"] == sorted([tag, "vip"]) and li["external_id"] == external_id
    assert (li["kind"], li["language"], li["preferred_channel"]) == ("person", "zh-CN", "wechat")
    assert li["addresses"] == [
        {
            "label": "home",
            "country": "CN",
            "region": "广东省",
            "city": "深圳",
            "district": "南山区",
            "street": "科技园 1 号",
            "postal_code": "518000",
            "primary": True,
        }
    ]
    assert li["preferences"]["notes"] == "喜欢绿茶" and li["attributes"] == {key: "金卡"}
    assert li["source"] == "展会" and li["owner_id"] is None
    company = found["华为技术"]
    assert (company["kind"], company["company"], company["language"]) == ("company", "华为", "en")
    [event] = customers.timeline(viewer=admin, customer_id=li["id"])["items"]
    assert event["import_id"] == summary["id"]
    # and by pinyin, as any customer
    assert li["id"] in {c["id"] for c in customers.search_customers(viewer=admin, q="ln")["items"]}


def test_gbk_csv_upsert_matched_on_phone(tmp_path, call, customers, admin, make_customer):
    tag = unique_tag()
    existing = make_customer(name="王芳", tags=[tag])
    number = existing["phones"][0]["number"]
    new_mobile = unique_mobile()
    path = write_csv(
        tmp_path / "gbk.csv",
        [
            ["姓名", "联系电话", "标签", "备注"],
            ["王芳芳", number.removeprefix("+86"), tag, "老客户"],
            ["赵敏", new_mobile, tag, ""],
        ],
        encoding="gbk",
    )
    summary = do_import(call, path, admin, mode="upsert", match_on="phone")
    assert (summary["created"], summary["updated"], summary["rejected"]) == (1, 1, 0)
    found = tagged(customers, admin, tag)
    assert set(found) == {"王芳芳", "赵敏"}
    assert found["王芳芳"]["id"] == existing["id"]
    assert found["王芳芳"]["preferences"]["notes"] == "老客户"
    assert found["王芳芳"]["emails"] == existing["emails"]  # untouched: no e-mail column
    assert found["赵敏"]["phones"][0]["number"] == f"+86{new_mobile}"


def test_xlsx_create_then_update_by_external_id(tmp_path, call, customers, admin):
    tag = unique_tag()
    key = f"visits_{uuid.uuid4().hex[:6]}"
    customers.define_attribute(actor=actor_of(admin), key=key, type="number", label="Visits")
    since = f"since_{uuid.uuid4().hex[:6]}"
    customers.define_attribute(actor=actor_of(admin), key=since, type="date", label="Since")
    ids = [f"X-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    header = ["Name", "E-mail", "External ID", "Tags", "Visits", "Since", "Country", "City"]
    path = write_xlsx(
        tmp_path / "first.xlsx",
        [
            header,
            ["Ann Lee", unique_email(), ids[0], tag, 3, datetime(2026, 3, 1), "GB", "London"],
            ["Bob Ma", None, ids[1], tag, None, None, None, None],
        ],
    )
    summary = do_import(call, path, admin, mode="create", match_on="external_id")
    assert (summary["created"], summary["rejected"]) == (2, 0)
    ann = tagged(customers, admin, tag)["Ann Lee"]
    assert ann["attributes"] == {key: 3, since: "2026-03-01"}
    assert ann["addresses"][0]["country"] == "GB" and ann["addresses"][0]["street"] is None

    second = write_xlsx(
        tmp_path / "second.xlsx",
        [
            ["external_id", "name", "visits", "city", "phone"],
            [ids[0], "Ann Lee-Smith", 4, "Leeds", "020 7946 0018"],
            [ids[1], "Bob Ma", None, None, None],  # nothing new
            ["X-nobody", "Nobody", None, None, None],
        ],
    )
    summary = do_import(call, second, admin, mode="update", match_on="external_id")
    assert (summary["updated"], summary["unchanged"], summary["rejected"]) == (1, 1, 1)
    updated = customers.get_customer(viewer=admin, customer_id=ann["id"])
    assert updated["name"] == "Ann Lee-Smith" and updated["attributes"][key] == 4
    assert updated["addresses"][0]["country"] == "GB"  # the address cells written over it
    assert updated["addresses"][0]["city"] == "Leeds"
    assert updated["phones"] == [{"number": "+442079460018", "label": "mobile", "primary": True}]
    [rejection] = customers.import_rejections(viewer=admin, import_id=summary["id"])["items"]
    assert rejection["row"] == 4
    assert rejection["reasons"] == {"external_id": ["No customer matches."]}


# -- modes --------------------------------------------------------------------------------------


def test_update_matched_on_email(tmp_path, call, customers, admin, make_customer):
    tag = unique_tag()
    one = make_customer(name="One", tags=[tag])
    two = make_customer(name="Two", tags=[tag])
    path = write_csv(
        tmp_path / "update.csv",
        [
            ["Email", "Name", "Tags", "Phone"],
            [one["emails"][0]["address"].upper(), "One Updated", "gold", ""],
            [f"{unique_email()}, {two['emails'][0]['address']}", "", "", ""],  # matches two
            [unique_email(), "Nobody", "", ""],  # no match: rejected in update mode
            ["", "Empty", "", ""],
            [one["emails"][0]["address"], "One Updated", "", ""],  # as it is now
        ],
    )
    summary = do_import(call, path, admin, mode="update", match_on="email")
    assert summary["updated"] == 2 and summary["unchanged"] == 1 and summary["rejected"] == 2
    found = {c["id"]: c for c in tagged(customers, admin, tag).values()}
    assert found[one["id"]]["name"] == "One Updated"
    assert sorted(found[one["id"]]["tags"]) == sorted([tag, "gold"])
    assert len(found[two["id"]]["emails"]) == 2  # the address it lacked was added
    assert found[two["id"]]["emails"][0] == two["emails"][0]  # its primary stays primary
    reasons = [r["reasons"] for r in all_rejections(customers, admin, summary["id"])]
    assert reasons == [{"Email": ["No customer matches."]}, {"Email": ["Empty."]}]


def test_upsert_with_the_same_email_twice_in_the_file(tmp_path, call, customers, admin):
    tag, email = unique_tag(), unique_email("twice")
    path = write_csv(
        tmp_path / "twice.csv",
        [
            ["name", "email", "tags", "phone"],
            ["First Row", email, tag, ""],
            ["Second Row", email.upper(), "", unique_mobile()],
        ],
    )
    summary = do_import(call, path, admin, mode="upsert", match_on="email")
    assert (summary["created"], summary["updated"], summary["rejected"]) == (1, 1, 0)
    [only] = tagged(customers, admin, tag).values()
    assert only["name"] == "Second Row" and len(only["phones"]) == 1


def test_create_rejects_duplicates_in_the_database_and_in_the_file(
    tmp_path, call, customers, admin, make_customer
):
    tag = unique_tag()
    existing = make_customer(external_id=f"dup-{uuid.uuid4().hex[:8]}")
    email = unique_email("same")
    path = write_csv(
        tmp_path / "create.csv",
        [
            ["name", "email", "phone", "external_id", "tags"],
            ["Has Existing Email", existing["emails"][0]["address"], "", "", tag],
            ["Has Existing Id", "", "", existing["external_id"], tag],
            ["New", email, "", "", tag],
            ["New Again", email, "", "", tag],
        ],
    )
    summary = do_import(call, path, admin, mode="create")
    assert (summary["created"], summary["rejected"]) == (1, 3)
    assert set(tagged(customers, admin, tag)) == {"New"}
    reasons = {r["row"]: r["reasons"] for r in all_rejections(customers, admin, summary["id"])}
    message = f"Already in use by another customer (customer {existing['id']})."
    assert reasons[2] == {"email": [message]}
    assert list(reasons[3]) == ["external_id"] and list(reasons[5]) == ["email"]


def test_bad_rows_are_rejected_with_reasons_and_good_rows_land(tmp_path, call, customers, admin):
    tag = unique_tag()
    path = write_csv(
        tmp_path / "bad.csv",
        [
            ["姓名", "邮箱", "手机", "标签", "类型"],
            ["Good One", unique_email(), unique_mobile(), tag, ""],
            ["Bad Email", "not-an-email", "", tag, ""],
            ["Bad Phone", "", "12345", tag, ""],
            ["", unique_email(), "", tag, ""],  # no name: cannot create
            ["Extra Cells", "", "", tag, "", "spill", "over"],
            ["Bad Kind", "", "", tag, "alien"],
            ["Good Two", "", "", tag, "公司"],
        ],
    )
    summary = do_import(call, path, admin, mode="upsert", match_on="email")
    assert (summary["created"], summary["rejected"], summary["processed_rows"]) == (2, 5, 7)
    assert set(tagged(customers, admin, tag)) == {"Good One", "Good Two"}
    rejected = all_rejections(customers, admin, summary["id"])
    assert [r["row"] for r in rejected] == [3, 4, 5, 6, 7]
    by_row = {r["row"]: r for r in rejected}
    assert by_row[3]["reasons"] == {"邮箱": ["not-an-email: Not a valid e-mail address."]}
    assert list(by_row[4]["reasons"]) == ["手机"]
    assert by_row[4]["reasons"]["手机"][0].startswith("12345: Not a valid phone number")
    assert by_row[5]["reasons"] == {"姓名": ["Required to create a customer."]}
    assert by_row[6]["reasons"] == {"_row": ["Cells beyond the last named column: spill | over"]}
    assert by_row[6]["values"][""] == "spill | over"
    assert by_row[7]["reasons"] == {"类型": ["Must be person or company (个人 or 公司)."]}
    assert by_row[3]["values"] == {
        "姓名": "Bad Email",
        "邮箱": "not-an-email",
        "手机": "",
        "标签": tag,
        "类型": "",
    }


def test_unknown_or_missing_columns_refuse_the_file(tmp_path, call, customers, admin):
    tag = unique_tag()
    path = write_csv(
        tmp_path / "typo.csv",
        [["Nmae", "邮箱", "Phnoe", "标签"], ["Typo", unique_email(), "", tag]],
    )
    with pytest.raises(BadRequest) as caught:
        do_import(call, path, admin, mode="upsert", match_on="email")
    problems = caught.value.extra["errors"]["columns"]
    assert "Unknown column: Nmae" in problems and "Unknown column: Phnoe" in problems
    assert any(problem.startswith("Creating customers needs one of") for problem in problems)
    assert tagged(customers, admin, tag) == {}
    no_match_column = write_csv(tmp_path / "nomatch.csv", [["name"], ["Someone"]])
    with pytest.raises(BadRequest) as caught:
        do_import(call, no_match_column, admin, mode="update", match_on="phone")
    [problem] = caught.value.extra["errors"]["columns"]
    assert problem.startswith("Matching on phone needs one of the columns phone")


def test_a_broken_file_imports_nothing(tmp_path, customers, admin):
    tag = unique_tag()
    lines = [f"Row {n},{unique_email()},{tag}" for n in range(200)]
    body = ("\ufeffname,email,tags\n" + "\n".join(lines) + "\n").encode()
    path = tmp_path / "broken.csv"
    path.write_bytes(body + b"Last Row,\xff\xfe\xff@example.com," + tag.encode() + b"\n")
    calls = []

    def recording(method, **kwargs):
        calls.append(method)
        raise AssertionError("the service must not hear of a broken file")

    with pytest.raises(BadRequest) as caught:
        run_import(
            recording,
            path,
            actor=actor_of(admin),
            import_id=str(uuid.uuid4()),
            filename=path.name,
            mode="create",
            match_on="email",
        )
    assert "file" in caught.value.extra["errors"]
    assert calls == []
    assert tagged(customers, admin, tag) == {}


# -- the process --------------------------------------------------------------------------------


def test_progress_is_visible_while_the_import_runs(tmp_path, call, customers, admin):
    tag = unique_tag()
    rows = [["name", "email", "tags"]]
    rows += [[f"Progress {n}", unique_email(), tag] for n in range(35)]
    path = write_csv(tmp_path / "progress.csv", rows)
    import_id = str(uuid.uuid4())
    seen = []

    def progress(done, total):
        state = customers.get_import(viewer=admin, import_id=import_id)
        seen.append((done, total, state["status"], state["processed_rows"], state["created"]))

    summary = run_import(
        call,
        path,
        actor=actor_of(admin),
        import_id=import_id,
        filename=path.name,
        mode="create",
        match_on="email",
        progress=progress,
        batch_size=10,
    )
    assert seen == [
        (10, 35, "running", 10, 10),
        (20, 35, "running", 20, 20),
        (30, 35, "running", 30, 30),
        (35, 35, "running", 35, 35),
    ]
    assert summary["status"] == "completed" and summary["finished_at"] is not None
    assert customers.get_import(viewer=admin, import_id=import_id) == summary


def test_a_batch_sent_twice_is_applied_once_and_an_id_begins_once(call, customers, admin):
    tag, import_id, actor = unique_tag(), str(uuid.uuid4()), actor_of(admin)
    begin = {
        "actor": actor,
        "import_id": import_id,
        "filename": "x.csv",
        "mode": "create",
        "match_on": "email",
        "columns": ["name", "tags"],
        "total_rows": 2,
    }
    assert call("begin_import", **begin)["status"] == "running"
    with pytest.raises(Conflict):
        call("begin_import", **begin)
    batch = [{"row": 2, "values": {"name": "Once", "tags": tag}}]
    assert call("import_rows", actor=actor, import_id=import_id, rows=batch)["created"] == 1
    assert call("import_rows", actor=actor, import_id=import_id, rows=batch)["created"] == 0
    assert set(tagged(customers, admin, tag)) == {"Once"}
    with pytest.raises(NotFound):  # only the one who began it feeds it
        call("import_rows", actor=actor_of(principal("admin")), import_id=import_id, rows=batch)
    done = call("finish_import", actor=actor, import_id=import_id, status="completed")
    assert done["processed_rows"] == 1 and done["status"] == "completed"
    with pytest.raises(RuleViolation):
        call("import_rows", actor=actor, import_id=import_id, rows=batch)
    with pytest.raises(RuleViolation):
        call("finish_import", actor=actor, import_id=import_id, status="failed")


def test_who_imports_owns_and_sees(tmp_path, call, customers, admin):
    tag = unique_tag()
    agent, other, manager = principal("sales"), principal("sales"), principal("manager")
    path = write_csv(tmp_path / "mine.csv", [["name", "tags"], ["Mine", tag]])
    summary = do_import(call, path, agent, mode="create")
    [mine] = tagged(customers, agent, tag).values()
    assert mine["owner_id"] == agent["id"]
    assert customers.get_import(viewer=agent, import_id=summary["id"])["id"] == summary["id"]
    assert customers.get_import(viewer=manager, import_id=summary["id"])["actor_id"] == agent["id"]
    with pytest.raises(NotFound):
        customers.get_import(viewer=other, import_id=summary["id"])
    with pytest.raises(NotFound):
        customers.import_rejections(viewer=other, import_id=summary["id"])
    assert customers.list_imports(viewer=other)["items"] == []
    # the other sales user's upsert finds the customer but may not change it
    customers.update_customer(
        **as_(agent),
        customer_id=mine["id"],
        changes={"external_id": f"own-{uuid.uuid4().hex[:6]}"},
        expected_version=mine["version"],
    )
    ext = customers.get_customer(viewer=agent, customer_id=mine["id"])["external_id"]
    theirs = write_csv(tmp_path / "theirs.csv", [["name", "external_id"], ["X", ext]])
    result = do_import(call, theirs, other, mode="upsert", match_on="external_id")
    assert result["rejected"] == 1
    [rejection] = customers.import_rejections(viewer=other, import_id=result["id"])["items"]
    assert rejection["reasons"] == {"external_id": ["Matches a customer you may not change."]}
    analyst = principal("analyst")
    with pytest.raises(Forbidden):
        do_import(call, path, analyst, mode="create")
    with pytest.raises(Forbidden):
        customers.revert_import(actor=actor_of(analyst), import_id=summary["id"])


def test_imports_are_listed_newest_first_a_page_at_a_time(tmp_path, call, customers):
    who = principal("sales")
    ids = []
    for n in range(3):
        path = write_csv(tmp_path / f"list{n}.csv", [["name"], [f"Listed {n}"]])
        ids.append(do_import(call, path, who, mode="create")["id"])
    first = customers.list_imports(viewer=who, limit=2)
    second = customers.list_imports(viewer=who, limit=2, cursor=first["next_cursor"])
    assert [i["id"] for i in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    everyone = customers.list_imports(viewer=principal("admin"), limit=200)["items"]
    assert set(ids) <= {i["id"] for i in everyone}


def test_a_command_is_never_the_victim_of_an_import(
    tmp_path, call, admin, make_customer, customers, customers_engine
):
    """A command locks a customer's row, then waits for the event table; an import's batch
    holds the event table and wants that row. The batch lets go (and runs again): the command
    is not ended as a deadlock's victim."""
    target = make_customer(name="Wanted By Both")
    rows = [["email", "name"]] + [[unique_email(), f"Before {n}"] for n in range(40)]
    rows.append([target["emails"][0]["address"], "Renamed By Import"])
    path = write_csv(tmp_path / "both.csv", rows)
    with customers_engine.connect() as conn:
        command = conn.begin()
        conn.execute(
            text("SELECT id FROM customers WHERE id = :id FOR UPDATE"), {"id": target["id"]}
        )
        running = eventlet.spawn(do_import, call, path, admin, mode="upsert", match_on="email")
        eventlet.sleep(0.15)  # the batch holds the event table, busy with the first rows
        conn.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))  # as the command's append
        command.commit()
    summary = running.wait()
    assert (summary["status"], summary["created"], summary["updated"]) == ("completed", 40, 1)
    assert customers.get_customer(viewer=admin, customer_id=target["id"])["name"] == (
        "Renamed By Import"
    )


# -- revert -------------------------------------------------------------------------------------


def test_revert_restores_the_previous_state_and_keeps_later_edits(
    tmp_path, call, customers, admin, make_customer, customers_engine
):
    tag = unique_tag()
    key = f"tier_{uuid.uuid4().hex[:6]}"
    customers.define_attribute(actor=actor_of(admin), key=key, type="string", label=key)
    kept = make_customer(name="Kept As It Was", tags=[tag], preferences={"notes": "old notes"})
    customers.set_attributes(**as_(admin), customer_id=kept["id"], values={key: "bronze"})
    kept = customers.get_customer(viewer=admin, customer_id=kept["id"])
    edited = make_customer(name="Edited Later", tags=[tag])
    new_email = unique_email("new")
    path = write_csv(
        tmp_path / "revert.csv",
        [
            ["email", "name", "tags", "备注", key, "phone"],
            [
                kept["emails"][0]["address"],
                "Changed By Import",
                "imported",
                "new notes",
                "gold",
                unique_mobile(),
            ],
            [edited["emails"][0]["address"], "Import Name", "imported", "", "", ""],
            [new_email, "Created By Import", tag, "", "", ""],
            ["broken@", "Rejected", tag, "", "", ""],
        ],
    )
    summary = do_import(call, path, admin, mode="upsert", match_on="email")
    assert (summary["created"], summary["updated"], summary["rejected"]) == (1, 2, 1)
    changed = customers.get_customer(viewer=admin, customer_id=kept["id"])
    assert changed["name"] == "Changed By Import" and changed["attributes"][key] == "gold"
    assert "imported" in changed["tags"] and len(changed["phones"]) == 2
    # someone edits one of the imported values afterwards
    later = customers.get_customer(viewer=admin, customer_id=edited["id"])
    customers.update_customer(
        **as_(admin),
        customer_id=edited["id"],
        changes={"name": "Edited By Hand"},
        expected_version=later["version"],
    )
    created = tagged(customers, admin, tag)["Created By Import"]

    reverted = customers.revert_import(actor=actor_of(admin), import_id=summary["id"])
    assert reverted["status"] == "reverted" and reverted["reverted_at"] is not None
    assert reverted["revert_conflicts"] == 1
    assert comparable(customers.get_customer(viewer=admin, customer_id=kept["id"])) == comparable(
        kept
    )
    after = customers.get_customer(viewer=admin, customer_id=edited["id"])
    assert after["name"] == "Edited By Hand"  # the newer value is kept: the conflict
    assert after["tags"] == [tag]  # the rest is restored
    gone = customers.get_customer(viewer=admin, customer_id=created["id"])
    assert gone["status"] == "archived"
    assert set(tagged(customers, admin, tag)) == {"Kept As It Was", "Edited By Hand"}
    newest = customers.timeline(viewer=admin, customer_id=created["id"])["items"][0]
    assert newest["type"] == "customer.archived"
    assert newest["changes"] == {"reason": "import_reverted", "import_id": summary["id"]}
    assert newest["import_id"] is None
    assert customers.import_rejections(viewer=admin, import_id=summary["id"])["items"] == []
    with customers_engine.connect() as conn:  # the reversal is new events, not the import's
        marks = conn.execute(
            text(
                "SELECT metadata ->> 'import_id' AS import_id, "
                "metadata ->> 'reverts_import_id' AS reverts FROM events "
                "WHERE stream_id IN (:a, :b, :c) AND global_position > "
                "(SELECT max(global_position) FROM events WHERE metadata ? 'import_id' "
                "AND metadata ->> 'import_id' = :id)"
            ),
            {"a": kept["id"], "b": edited["id"], "c": created["id"], "id": summary["id"]},
        ).all()
    reverts = [m for m in marks if m.reverts == summary["id"]]
    assert len(reverts) >= 3 and all(m.import_id is None for m in marks)
    with pytest.raises(RuleViolation) as caught:
        customers.revert_import(actor=actor_of(admin), import_id=summary["id"])
    assert caught.value.extra["code"] == "import_reverted"
    # the address is free again for a new customer
    fresh = make_customer(emails=[{"address": new_email}])
    assert fresh["id"] != created["id"]
    rebuild_and_compare(customers_engine)  # the log explains the read model, reverts included


def test_a_running_import_cannot_be_reverted_a_failed_one_can(tmp_path, call, customers, admin):
    tag = unique_tag()
    rows = [["name", "tags"]] + [[f"Half {n}", tag] for n in range(6)]
    path = write_csv(tmp_path / "half.csv", rows)
    import_id = str(uuid.uuid4())
    batches = []

    def failing(method, **kwargs):
        if method == "import_rows":
            if batches:
                with pytest.raises(RuleViolation) as caught:
                    customers.revert_import(actor=actor_of(admin), import_id=import_id)
                assert caught.value.extra["code"] == "import_running"
                raise ConnectionError("the network went away")
            batches.append(kwargs["rows"])
        return call(method, **kwargs)

    with pytest.raises(ConnectionError):
        run_import(
            failing,
            path,
            actor=actor_of(admin),
            import_id=import_id,
            filename=path.name,
            mode="create",
            match_on="email",
            batch_size=3,
        )
    failed = customers.get_import(viewer=admin, import_id=import_id)
    assert (failed["status"], failed["created"]) == ("failed", 3)
    assert failed["error"] == "ConnectionError"
    assert len(tagged(customers, admin, tag)) == 3
    reverted = customers.revert_import(actor=actor_of(admin), import_id=import_id)
    assert (reverted["status"], reverted["revert_conflicts"]) == ("reverted", 0)
    assert tagged(customers, admin, tag) == {}
    assert len(tagged(customers, admin, tag, status="archived")) == 3


# -- housekeeping and size ----------------------------------------------------------------------


def test_housekeeping_purges_old_rejections_and_ends_abandoned_imports(
    tmp_path, call, customers, admin, customers_engine
):
    path = write_csv(tmp_path / "old.csv", [["name", "email"], ["Old", "bad@"], ["Older", "x@"]])
    old = do_import(call, path, admin, mode="create")
    recent = do_import(call, path, admin, mode="create")
    stuck = str(uuid.uuid4())
    call(
        "begin_import",
        actor=actor_of(admin),
        import_id=stuck,
        filename="stuck.csv",
        mode="create",
        match_on="email",
        columns=["name"],
        total_rows=10,
    )
    with customers_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE import_rejections SET rejected_at = now() - interval '31 days' "
                "WHERE import_id = :id"
            ),
            {"id": old["id"]},
        )
        conn.execute(
            text("UPDATE imports SET updated_at = now() - interval '2 hours' WHERE id = :id"),
            {"id": stuck},
        )
    with Session(customers_engine) as session:
        worker_factory(CustomersService, db=session).housekeeping()
    assert customers.import_rejections(viewer=admin, import_id=old["id"])["items"] == []
    assert len(customers.import_rejections(viewer=admin, import_id=recent["id"])["items"]) == 2
    assert customers.get_import(viewer=admin, import_id=old["id"])["rejected"] == 2  # counts stay
    abandoned = customers.get_import(viewer=admin, import_id=stuck)
    assert abandoned["status"] == "failed" and abandoned["error"].startswith("abandoned")

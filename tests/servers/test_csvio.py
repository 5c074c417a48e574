"""CSV export and import of servers: the pages, reading a file and
checking its rows (the import job itself: test_import_job.py)."""
import csv
import io

import pytest

from ezpyr.jobs.models import Job
from ezpyr.servers import csvio
from ezpyr.servers.csvio import CsvFile, ImportRefused, cell_value, check_file, csv_cell, decode, export_csv
from ezpyr.servers.models import Server
from tests.factories import post
from tests.servers.conftest import HEADER, imported, make_server, make_server_group, run_import, upload


def rows_of(text):
    return list(csv.reader(io.StringIO(text)))


def names(dbsession):
    dbsession.expire_all()
    return sorted(s.name for s in dbsession.query(Server))


# -- cells ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, cell", [
    ("=1+1", "'=1+1"), ("+33", "'+33"), ("-web", "'-web"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("'quoted", "''quoted"), ("plain", "plain"), ("", ""), (22, "22"),
])
def test_cells_are_spreadsheet_safe_and_reversible(value, cell):
    assert csv_cell(value) == cell
    assert cell_value(cell) == str(value)


def test_a_lone_quote_typed_in_a_file_is_kept():
    assert cell_value("'hello") == "'hello"
    assert cell_value("'") == "'"


# -- export ----------------------------------------------------------------------------

def test_export_columns_and_no_password(admin_app, dbsession, secret_box):
    group = make_server_group(dbsession, "=HYPERLINK(evil)")
    make_server(dbsession, secret_box, "web1", port=2222, remote_user="deploy", group=group,
                description="-2+3")
    make_server(dbsession, secret_box, "vault", host="10.0.0.9", auth_method="password",
                password="hunter2-secret")
    res = admin_app.get("/servers/export.csv")
    assert res.content_type == "text/csv"
    assert res.headers["Content-Disposition"].startswith('attachment; filename="servers-')
    assert "hunter2-secret" not in res.text and "password" not in rows_of(res.text)[0]
    assert rows_of(res.text) == [
        ["name", "host", "port", "remote_user", "auth_method", "group", "description"],
        ["vault", "10.0.0.9", "22", "root", "password", "", ""],
        ["web1", "web1.example.net", "2222", "deploy", "key", "'=HYPERLINK(evil)", "'-2+3"],
    ]


# -- import: happy paths -------------------------------------------------------------

def test_export_then_import_round_trip(admin_app, dbsession, secret_box):
    web = make_server_group(dbsession, "web")
    make_server_group(dbsession, "@ops")
    make_server(dbsession, secret_box, "web1", group=web, description='commas, "quotes"\nand a newline')
    make_server(dbsession, secret_box, "-dash", host="2001:db8::7", port=2200, description="=cmd")
    make_server(dbsession, secret_box, "quote", remote_user="_svc", description="'as typed")
    exported = admin_app.get("/servers/export.csv").text
    for server in dbsession.query(Server):
        dbsession.delete(server)
    dbsession.commit()

    page = imported(admin_app, exported)
    assert page.html.select_one("[data-field=verdict]").get_text(strip=True) == "3 servers added."
    assert admin_app.get("/servers/export.csv").text == exported


def test_import_with_passwords_and_groups(admin_app, dbsession, secret_box):
    make_server_group(dbsession, "web")
    text = ("name,host,port,remote_user,auth_method,group,description,password\n"
            "a1,a1.example.net,22,root,key,web,,\n"
            "a2,10.0.0.2,2222,deploy,password,Web,second,p@ss, word\n")
    # The last cell holds a comma: quote it as any CSV writer would.
    text = text.replace("p@ss, word", '"p@ss, word"')
    assert "2 servers added." in imported(admin_app, text)
    dbsession.expire_all()
    a1, a2 = dbsession.query(Server).order_by(Server.name).all()
    assert a1.group.name == "web" and a2.group.name == "web"
    assert (a2.port, a2.remote_user, a2.auth_method) == (2222, "deploy", "password")
    assert a1.password_encrypted is None
    assert "p@ss" not in a2.password_encrypted
    assert secret_box.decrypt(a2.password_encrypted) == "p@ss, word"


def test_header_in_any_order_and_case_with_bom_and_blank_lines(dbsession, secret_box):
    data = ("\ufeffDescription,Group,Auth_Method,Remote_User,Port,Host,Name\r\n\r\n"
            "first,,key,root,22,h1.example.net,h1\r\n\r\n").encode("utf-8")
    checked = check_file(dbsession, secret_box, CsvFile(decode(data)))
    assert checked.ok and checked.rows == 1
    assert (checked.values[0].name, checked.values[0].description) == ("h1", "first")
    assert run_import(dbsession, secret_box, data).state == "done"
    assert dbsession.query(Server).one().description == "first"


# -- import: refusals ------------------------------------------------------------------

def row_errors(page) -> list[str]:
    return [li.get_text() for li in page.html.select(".import-errors li")]


def test_bad_row_imports_nothing_and_names_the_line(admin_app, dbsession):
    text = HEADER + ("ok1,ok1.example.net,22,root,key,,\n"
                     "ok2,ok2.example.net,22,root,key,,\n"
                     "bad,bad.example.net,0,root,key,,\n"
                     "ok3,ok3.example.net,22,root,key,,\n")
    page = imported(admin_app, text)
    assert row_errors(page) == ["line 4: port must be a number from 1 to 65535."]
    assert "1 error in servers.csv; nothing was imported." in page
    assert names(dbsession) == []


def test_every_error_of_every_row_is_listed(admin_app, dbsession, secret_box):
    make_server(dbsession, secret_box, "taken")
    text = HEADER + ("a b,x;rm -rf /,70000,Root,key,,\n"
                     "taken,h.example.net,abc,root,key,,\n"
                     "vault,v.example.net,22,root,password,,\n"
                     "w1,w1.example.net,22,root,key,nosuchgroup,\n"
                     "w2,w2.example.net,22,root,telnet,,\n"
                     "w3,w3.example.net,22,root,key,,bell\x07 and NUL\x00\n"
                     "short,row\n")
    page = imported(admin_app, text)
    assert row_errors(page) == [
        "line 2: a server name is 1 to 100 characters: letters, digits, '.', '_' or '-'.",
        "line 2: host must be a host name (letters, digits, '-' and '.', e.g. web1.example.com) "
        "or an IPv4 or IPv6 address, with no spaces or other characters.",
        "line 2: port must be a number from 1 to 65535.",
        "line 2: remote user must be 1 to 32 characters: lower-case letters, digits, '_' or '-', "
        "starting with a letter or '_' (e.g. root or deploy).",
        "line 3: a server named 'taken' already exists.",
        "line 3: port must be a number from 1 to 65535.",
        "line 4: a password is required when the gateway logs in with a password.",
        "line 5: there is no server group named 'nosuchgroup'; create it first or leave the group empty.",
        "line 6: authentication must be 'key' (the gateway key) or 'password' (a stored password).",
        "line 7: description must not hold control characters (such as NUL); line breaks and tabs are fine.",
        "line 8: it has 2 cells, but the header names 7 columns.",
    ]
    assert "11 errors in servers.csv; nothing was imported" in page
    assert names(dbsession) == ["taken"]


def test_duplicate_inside_the_file(admin_app, dbsession):
    text = HEADER + ("web1,a.example.net,22,root,key,,\n"
                     "web2,b.example.net,22,root,key,,\n"
                     "WEB1,c.example.net,22,root,key,,\n")
    page = imported(admin_app, text)
    assert row_errors(page) == ["line 4: the name 'WEB1' is already used on line 2 of this file."]
    assert names(dbsession) == []


def test_line_numbers_count_lines_inside_quoted_cells(dbsession, secret_box):
    text = HEADER + ('a1,a1.example.net,22,root,key,,"two\nlines"\n'
                     "a2,a2.example.net,0,root,key,,\n")
    checked = check_file(dbsession, secret_box, CsvFile(text))
    assert checked.errors == ["line 4: port must be a number from 1 to 65535."]


UNREADABLE = [
    (b"", "The file is empty"),
    (b"\n\n", "The file is empty"),
    (HEADER.encode(), "The file has a header but no servers."),
    (b"name,host,port\nweb1,h,22\n",
     "but it lacks the columns remote_user, auth_method, group, description."),
    ((HEADER.strip() + ",colour\n").encode(), "it has unknown column 'colour'"),
    ((HEADER.strip() + ",name\n").encode(), "it names name more than once"),
    (HEADER.encode() + "caf\xe9,h,22,root,key,,\n".encode("latin-1"),
     "The file is not UTF-8 text (line 2 has a byte that is not UTF-8)."),
    (HEADER.encode() + b'"unclosed,h,22,root,key,,\n', "this is not valid CSV"),
]


@pytest.mark.parametrize("data, message", UNREADABLE)
def test_unreadable_files_are_refused_as_a_whole(dbsession, secret_box, data, message):
    with pytest.raises(ImportRefused) as info:
        CsvFile(decode(data)).rows()
    assert message in info.value.message and info.value.message.endswith("Nothing was imported.")


def test_an_unreadable_file_is_refused_on_the_page_before_any_job(admin_app, dbsession):
    for data, message in UNREADABLE:
        res = upload(admin_app, data)
        assert res.status_int == 200, res.text[:2000]
        assert message in res.html.select_one(".form-errors").get_text(), message
        assert "Nothing was imported." in res
    dbsession.expire_all()
    assert dbsession.query(Job).count() == 0  # refused before any job was made
    assert names(dbsession) == []


def test_refusal_is_shown_on_the_page(admin_app, dbsession):
    res = upload(admin_app, b"name,host\nx,y\n")
    assert res.status_int == 200
    assert "lacks the columns port, remote_user" in res and "Nothing was imported." in res


def test_no_file_chosen(admin_app):
    res = post(admin_app, "/servers/import", {})
    assert res.status_int == 200 and "Choose a CSV file to upload." in res


def test_too_big_file_is_refused(admin_app, dbsession, monkeypatch):
    monkeypatch.setattr(csvio, "MAX_BYTES", 1000)
    text = HEADER + "".join(f"s{i},s{i}.example.net,22,root,key,,\n" for i in range(100))
    res = upload(admin_app, text)
    assert res.status_int == 200
    assert "The file is larger than" in res and "Nothing was imported." in res
    assert names(dbsession) == []
    assert dbsession.query(Job).count() == 0


def test_the_size_limit_is_50_mb():
    assert csvio.MAX_BYTES == 50 * 1024 * 1024
    with pytest.raises(ImportRefused, match="larger than 50 MB"):
        decode(b"x" * (csvio.MAX_BYTES + 1))


def test_too_many_rows_are_refused(dbsession, secret_box, monkeypatch):
    monkeypatch.setattr(csvio, "MAX_ROWS", 3)
    text = HEADER + "".join(f"s{i},s{i}.example.net,22,root,key,,\n" for i in range(4))
    job = run_import(dbsession, secret_box, text)
    assert (job.state, job.refused) == ("failed", True)
    assert "The file has more than 3 servers; split it into smaller files. Nothing was imported." == job.error
    assert names(dbsession) == []


def test_import_page_explains_the_file(admin_app):
    page = admin_app.get("/servers/import")
    assert 'enctype="multipart/form-data"' in page
    assert "name,host,port,remote_user,auth_method,group,description" in page
    assert "The import runs as a job" in page


def test_non_admin_cannot_import(user_app, dbsession):
    token = user_app.get("/profile").html.select_one("input[name=csrf_token]")["value"]
    user_app.post("/servers/import", {"csrf_token": token},
                  upload_files=[("file", "s.csv", (HEADER + "x,x.example.net,22,root,key,,\n").encode())],
                  status=403)
    assert names(dbsession) == []
    assert dbsession.query(Job).count() == 0


def test_export_function_matches_the_download(admin_app, dbsession, secret_box):
    make_server(dbsession, secret_box, "web1")
    assert admin_app.get("/servers/export.csv").text == export_csv(dbsession)

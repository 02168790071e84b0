"""Serving the built web UI."""

from gateway.static import serve_ui


def test_files_app_routes_and_missing_build(tmp_path):
    assert serve_ui("", tmp_path / "missing").status_code == 503
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>CMS</title>")
    (tmp_path / "assets" / "app.js").write_text("console.log(1)")
    script = serve_ui("assets/app.js", tmp_path)
    assert script.mimetype in ("text/javascript", "application/javascript")
    assert "immutable" in script.headers["Cache-Control"]
    page = serve_ui("users/42", tmp_path)
    assert page.status_code == 200 and b"<title>CMS" in page.data
    assert serve_ui("assets/nope.js", tmp_path).status_code == 404
    assert serve_ui("../../etc/passwd", tmp_path).status_code == 404
    assert serve_ui("favicon.ico", tmp_path).status_code == 404
    for api in ("api", "api/", "api/v2/orders"):  # a mistyped API address is not the web UI
        missing = serve_ui(api, tmp_path)
        assert (missing.status_code, missing.mimetype) == (404, "application/problem+json")

"""The dashboard's answers to bad input and to a collector that is away: messages, never a 5xx or a traceback.

The collector's read API is a fake here (an httpx MockTransport); the real one is driven in a real browser by
tests/integration/test_dashboard_browser.py.
"""

import httpx
from fastapi.testclient import TestClient

from lightwire.services.dashboard.app import build_app
from lightwire.services.dashboard.read_api import ReadApi
from lightwire.services.dashboard.settings import DashboardSettings


def collector(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/api/rollouts":
        if "min_reward" in request.url.params:
            return httpx.Response(400, json={"error": {"message": "min_reward must be a number, got 'lots'", "type": "invalid_filter"}})
        return httpx.Response(200, json={"rows": [], "total": 0, "limit": 50, "offset": 0, "sort": "finished", "order": "desc"})
    if path.startswith("/api/rollouts/"):
        return httpx.Response(404, json={"error": {"message": "no rollout 'r-x</script>' in the analytics", "type": "not_found"}})
    if path == "/api/feedback":
        raise httpx.ConnectError("refused")
    return httpx.Response(500, text="Traceback (most recent call last): boom")


def client(**settings) -> TestClient:
    config = DashboardSettings(dashboard_inference_urls="", dashboard_trainer_url="", **settings)
    return TestClient(build_app(config, ReadApi(config, transport=httpx.MockTransport(collector))))


def test_an_unknown_rollout_is_a_not_found_page_with_the_id_escaped():
    page = client().get("/rollouts/r-x%3C%2Fscript%3E")
    assert page.status_code == 404
    assert "no rollout &#x27;r-x&lt;/script&gt;&#x27;" in page.text and "</script>'" not in page.text


def test_a_malformed_filter_is_a_400_with_the_collectors_message():
    page = client().get("/rollouts?min_reward=lots")
    assert page.status_code == 400
    assert "min_reward must be a number" in page.text
    api = client().get("/api/rollouts?min_reward=lots")
    assert api.status_code == 400
    assert api.json() == {"error": {"message": "min_reward must be a number, got 'lots'", "type": "invalid_filter"}}


def test_a_collector_away_or_failing_is_a_message_not_a_traceback():
    page = client().get("/feedback")
    assert page.status_code == 200  # the page stays up and keeps polling
    assert "did not answer (ConnectError); is the collector running?" in page.text
    failing = client().get("/api/errors")
    assert failing.status_code == 503
    assert "Traceback" not in failing.text
    assert failing.json()["error"]["message"] == "the collector answered 500"


def test_unknown_routes_are_not_found_in_the_views_format():
    assert client().get("/nowhere").status_code == 404
    assert client().get("/api/nowhere").json() == {"error": {"message": "no such page", "type": "http_error"}}


def test_with_keys_every_view_wants_one_and_the_login_sets_it():
    keyed = client(api_keys="k1")
    assert keyed.get("/rollouts").status_code == 401
    assert keyed.get("/api/rollouts").status_code == 401
    assert keyed.get("/api/rollouts", headers={"Authorization": "Bearer k1"}).status_code == 200
    assert keyed.post("/login", data={"key": "wrong", "next": "/rollouts"}).status_code == 401
    login = keyed.post("/login", data={"key": "k1", "next": "//evil.example/"}, follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == "/"  # never a redirect to another host
    assert keyed.get("/rollouts").status_code == 200  # the cookie the login set
    assert keyed.get("/healthz").status_code == 200  # health checks stay open

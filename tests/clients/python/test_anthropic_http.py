"""The Anthropic-compatible /v1/messages route, driven with raw HTTP."""
import json
import urllib.request

import pytest


def post(base_url, body, path="/v1/messages"):
    req = urllib.request.Request(base_url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", "x-api-key": "x", "anthropic-version": "2023-06-01"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers.get("content-type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type"), e.read().decode()


def test_messages_non_stream(base_url):
    status, ctype, body = post(base_url, {"model": "mock", "max_tokens": 50, "messages": [{"role": "user", "content": "hi there"}]})
    assert status == 200, body
    v = json.loads(body)
    assert v["type"] == "message" and v["role"] == "assistant"
    assert v["content"] == [{"type": "text", "text": "hi there"}]
    assert v["stop_reason"] == "end_turn"
    assert v["id"].startswith("msg_")


def test_messages_stream_event_order(base_url):
    status, ctype, body = post(base_url, {"model": "think", "max_tokens": 50, "stream": True,
                                          "messages": [{"role": "user", "content": "q"}]})
    assert status == 200 and ctype.startswith("text/event-stream")
    events = [line[len("event: "):] for line in body.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert events[-2] == "message_delta"
    assert "content_block_start" in events and "content_block_delta" in events


def test_messages_errors_use_anthropic_envelope(base_url):
    status, _, body = post(base_url, {"model": "mock", "messages": [{"role": "user", "content": "x"}]})
    assert status == 400
    v = json.loads(body)
    assert v["type"] == "error" and v["error"]["type"] == "invalid_request_error"
    assert v["error"]["message"] == "max_tokens is required and must be positive"
    status, _, body = post(base_url, {"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert status == 404
    assert json.loads(body)["error"]["type"] == "not_found_error"

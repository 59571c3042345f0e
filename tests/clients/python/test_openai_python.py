"""The official `openai` Python client pointed at ollmlx's /v1 routes."""
import openai
import pytest


@pytest.fixture()
def client(base_url):
    return openai.OpenAI(base_url=base_url + "/v1", api_key="ollmlx")


def test_models_list_and_retrieve(client):
    ids = [m.id for m in client.models.list()]
    assert "mock:latest" in ids
    m = client.models.retrieve("mock:latest")
    assert m.id == "mock:latest" and m.owned_by == "library"


def test_chat_completion_non_stream(client):
    r = client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "hello world"}])
    assert r.choices[0].message.content == "hello world"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == 2
    assert r.id.startswith("chatcmpl-")


def test_chat_completion_stream_with_usage(client):
    chunks = list(
        client.chat.completions.create(
            model="mock",
            messages=[{"role": "user", "content": "a b"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "a b"
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


def test_tool_calls_have_string_arguments(client):
    r = client.chat.completions.create(
        model="tools",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    )
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Paris","unit":"celsius"}'
    assert r.choices[0].finish_reason == "tool_calls"


def test_completions(client):
    r = client.completions.create(model="mock", prompt="x y")
    assert r.choices[0].text == "x y"


def test_embeddings_base64_default(client):
    r = client.embeddings.create(model="embed", input=["a", "b"])
    assert len(r.data) == 2 and len(r.data[0].embedding) == 8


def test_unknown_model_is_not_found_error(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


def test_responses_api(client):
    r = client.responses.create(model="mock", input="tell me")
    assert r.output_text == "tell me"

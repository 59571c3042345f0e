"""The official `ollama` Python client against ollmlx: every call it makes must parse and behave."""
import ollama
import pytest


@pytest.fixture()
def client(base_url):
    return ollama.Client(host=base_url)


def test_list_parses_every_entry(client):
    models = client.list().models
    names = [m.model for m in models]
    assert "mock:latest" in names and "tools:latest" in names
    for m in models:
        assert m.digest and len(m.digest) == 64
        assert m.details.family and m.details.parameter_size and m.details.quantization_level
        assert m.modified_at is not None


def test_show_has_model_info_and_capabilities(client):
    r = client.show("mock")
    assert r.modelinfo["general.architecture"] == "mock"
    assert "completion" in r.capabilities
    assert r.details.family == "mock"


def test_generate_non_stream(client):
    r = client.generate(model="mock", prompt="hello there")
    assert r.response == "hello there"
    assert r.done and r.done_reason == "stop"
    assert r.context == [1, 2, 3]
    assert r.eval_count == 2 and r.total_duration > 0


def test_generate_stream_only_last_chunk_is_done(client):
    chunks = list(client.generate(model="mock", prompt="a b c", stream=True))
    assert len(chunks) == 4
    assert [c.done for c in chunks] == [False, False, False, True]
    assert "".join(c.response for c in chunks) == "a b c"
    assert chunks[-1].eval_count == 3
    assert all(c.eval_count is None for c in chunks[:-1])


def test_generate_load_and_unload(client):
    assert client.generate(model="mock", prompt="").done_reason == "load"
    assert client.generate(model="mock", prompt="", keep_alive=0).done_reason == "unload"


def test_num_predict_gives_length(client):
    r = client.generate(model="mock", prompt="one two three four", options={"num_predict": 2})
    assert r.response == "one two"
    assert r.done_reason == "length"


def test_chat_stream_and_non_stream(client):
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi you"}]
    r = client.chat(model="mock", messages=msgs)
    assert r.message.role == "assistant" and r.message.content == "hi you"
    parts = list(client.chat(model="mock", messages=msgs, stream=True))
    assert "".join(p.message.content for p in parts) == "hi you"
    assert parts[-1].done and parts[-1].prompt_eval_count == 2


def test_chat_tools_arguments_are_a_dict(client):
    def get_weather(city: str, unit: str) -> str:
        """Get the weather.

        Args:
          city: the city
          unit: the unit
        """
        return "sunny"

    r = client.chat(model="tools", messages=[{"role": "user", "content": "weather?"}], tools=[get_weather])
    call = r.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert call.function.arguments == {"city": "Paris", "unit": "celsius"}
    follow = client.chat(
        model="mock",
        messages=[
            {"role": "user", "content": "weather?"},
            r.message,
            {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
            {"role": "user", "content": "thanks"},
        ],
    )
    assert follow.message.content == "thanks"


def test_chat_thinking_is_split(client):
    r = client.chat(model="think", messages=[{"role": "user", "content": "q"}], think=True)
    assert r.message.thinking == "Let me think."
    assert r.message.content == "The answer is 42."


def test_embed_and_legacy_embeddings(client):
    r = client.embed(model="embed", input=["a", "bc"])
    assert len(r.embeddings) == 2 and len(r.embeddings[0]) == 8
    norm = sum(x * x for x in r.embeddings[0])
    assert abs(norm - 1.0) < 1e-5
    e = client.embeddings(model="embed", prompt="a")
    assert len(e.embedding) == 8


def test_copy_and_delete(client):
    client.copy("mock", "mock-copy")
    assert "mock-copy:latest" in [m.model for m in client.list().models]
    client.delete("mock-copy")
    assert "mock-copy:latest" not in [m.model for m in client.list().models]


def test_unknown_model_raises_404(client):
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="does-not-exist", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 404
    assert "not found" in e.value.error


def test_bad_top_logprobs_is_400(client):
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="mock", messages=[{"role": "user", "content": "x"}], logprobs=True, top_logprobs=99)
    assert e.value.status_code == 400


def test_ps_parses(client):
    assert client.ps().models is not None


@pytest.mark.asyncio
async def test_async_client_streams_and_survives_early_break(base_url):
    c = ollama.AsyncClient(host=base_url)
    stream = await c.chat(model="mock", messages=[{"role": "user", "content": "x y z w"}], stream=True)
    async for part in stream:
        assert part.message.role == "assistant"
        break
    r = await c.chat(model="mock", messages=[{"role": "user", "content": "still alive"}])
    assert r.message.content == "still alive"

// The official `ollama` JS client against ollmlx at $OLLMLX_URL (scripted backend).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';

const host = process.env.OLLMLX_URL;
if (!host) throw new Error('OLLMLX_URL is not set: start ollmlx-mock-serve first (scripts/test.sh does)');
const ollama = new Ollama({ host });

test('version is a numeric semver >= 0.6.4', async () => {
  const { version } = await ollama.version();
  const parts = version.split('.').map(Number);
  assert.ok(parts.every(Number.isInteger));
  assert.ok(parts[0] > 0 || parts[1] > 6 || (parts[1] === 6 && parts[2] >= 4));
});

test('list, show, ps', async () => {
  const { models } = await ollama.list();
  assert.ok(models.some((m) => m.name === 'mock:latest'));
  const show = await ollama.show({ model: 'mock' });
  assert.equal(show.model_info['general.architecture'], 'mock');
  const ps = await ollama.ps();
  assert.ok(Array.isArray(ps.models));
});

test('generate streams and ends with done', async () => {
  const stream = await ollama.generate({ model: 'mock', prompt: 'one two', stream: true });
  let text = '';
  let last;
  for await (const part of stream) { text += part.response; last = part; }
  assert.equal(text, 'one two');
  assert.equal(last.done, true);
  assert.equal(last.eval_count, 2);
});

test('chat non-stream, tools and thinking', async () => {
  const r = await ollama.chat({ model: 'mock', messages: [{ role: 'user', content: 'hey' }] });
  assert.equal(r.message.content, 'hey');
  const t = await ollama.chat({ model: 'tools', messages: [{ role: 'user', content: 'w' }], tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }] });
  assert.deepEqual(t.message.tool_calls[0].function.arguments, { city: 'Paris', unit: 'celsius' });
  const th = await ollama.chat({ model: 'think', messages: [{ role: 'user', content: 'q' }], think: true });
  assert.equal(th.message.thinking, 'Let me think.');
});

test('chat stream can be aborted and the server survives', async () => {
  const stream = await ollama.chat({ model: 'mock', messages: [{ role: 'user', content: 'a b c d e' }], stream: true });
  for await (const part of stream) { assert.equal(part.message.role, 'assistant'); stream.abort(); break; }
  const r = await ollama.chat({ model: 'mock', messages: [{ role: 'user', content: 'alive' }] });
  assert.equal(r.message.content, 'alive');
});

test('embed and embeddings', async () => {
  const e = await ollama.embed({ model: 'embed', input: ['a', 'b'] });
  assert.equal(e.embeddings.length, 2);
  const l = await ollama.embeddings({ model: 'embed', prompt: 'a' });
  assert.equal(l.embedding.length, 8);
});

test('copy and delete (delete sends name)', async () => {
  await ollama.copy({ source: 'mock', destination: 'js-copy' });
  await ollama.delete({ model: 'js-copy' });
  const { models } = await ollama.list();
  assert.ok(!models.some((m) => m.name === 'js-copy:latest'));
});

test('unknown model is a 404 ResponseError with the server text', async () => {
  await assert.rejects(
    ollama.chat({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
    (err) => err.status_code === 404 && /model 'nope' not found/.test(err.error),
  );
});

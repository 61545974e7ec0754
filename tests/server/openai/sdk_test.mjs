// The official OpenAI Node SDK against bitnet serve: chat and completions, with and without
// streaming, models, and errors.  Every response must parse without complaint.
// usage: node sdk_test.mjs BASE_URL API_KEY
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const [base, key] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0, timeout: 30000 });
let checks = 0;
const check = (cond, what) => { assert.ok(cond, what); checks++; };

// models
const models = await client.models.list();
check(models.data.length === 1 && models.data[0].object === 'model', 'models.list');
const model = models.data[0].id;
check((await client.models.retrieve(model)).id === model, 'models.retrieve');

// chat, whole and streamed: the same text for the same seed
const messages = [{ role: 'system', content: 'You are brief.' }, { role: 'user', content: 'In the beginning' }];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 12, seed: 11, temperature: 0.9 });
check(chat.object === 'chat.completion' && chat.id.startsWith('chatcmpl-'), 'chat object');
check(chat.choices[0].message.role === 'assistant' && typeof chat.choices[0].message.content === 'string', 'chat message');
check(['stop', 'length'].includes(chat.choices[0].finish_reason), 'chat finish_reason');
check(chat.usage.completion_tokens <= 12 && chat.usage.total_tokens === chat.usage.prompt_tokens + chat.usage.completion_tokens, 'chat usage');

const stream = await client.chat.completions.create({ model, messages, max_tokens: 12, seed: 11, temperature: 0.9,
                                                      stream: true, stream_options: { include_usage: true } });
let text = '', finish = null, usage = null, role = null;
for await (const chunk of stream) {
  check(chunk.object === 'chat.completion.chunk', 'chunk object');
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    if (c.delta.role) role = c.delta.role;
    text += c.delta.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
}
check(role === 'assistant', 'streamed role');
check(text === chat.choices[0].message.content, `streamed chat text ${JSON.stringify(text)} = ${JSON.stringify(chat.choices[0].message.content)}`);
check(finish === chat.choices[0].finish_reason, 'streamed finish_reason');
check(usage && usage.completion_tokens === chat.usage.completion_tokens, 'streamed usage');

// the stream helper of the SDK
const runner = client.chat.completions.stream({ model, messages, max_tokens: 12, seed: 11, temperature: 0.9 });
const final = await runner.finalChatCompletion();
check(final.choices[0].message.content === chat.choices[0].message.content, 'stream helper final text');

// completions, whole and streamed
const comp = await client.completions.create({ model, prompt: 'In the beginning', max_tokens: 10, seed: 5 });
check(comp.object === 'text_completion' && typeof comp.choices[0].text === 'string', 'completion');
check(comp.usage.completion_tokens === 10 && comp.choices[0].finish_reason === 'length', 'completion length');
const cstream = await client.completions.create({ model, prompt: 'In the beginning', max_tokens: 10, seed: 5, stream: true });
let ctext = '';
for await (const chunk of cstream) ctext += chunk.choices[0]?.text ?? '';
check(ctext === comp.choices[0].text, 'streamed completion text');
const lp = await client.completions.create({ model, prompt: 'In the beginning', max_tokens: 3, logprobs: 2 });
check(lp.choices[0].logprobs.tokens.length === 3, 'completion logprobs');
const clp = await client.chat.completions.create({ model, messages, max_tokens: 3, logprobs: true, top_logprobs: 2 });
check(clp.choices[0].logprobs.content.length === clp.usage.completion_tokens, 'chat logprobs');

// errors come back as the SDK's typed errors
try {
  await client.chat.completions.create({ model, messages, temperature: 7 });
  check(false, 'temperature 7 accepted');
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature', `bad request: ${e}`);
}
try {
  await client.completions.create({ model, prompt: 'x', n: 2 });
  check(false, 'n=2 accepted');
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.param === 'n', `n=2: ${e}`);
}
try {
  await new OpenAI({ baseURL: `${base}/v1`, apiKey: 'wrong', maxRetries: 0 }).models.list();
  check(false, 'wrong key accepted');
} catch (e) {
  check(e instanceof OpenAI.AuthenticationError && e.status === 401, `wrong key: ${e}`);
}
console.log(`${checks} checks passed`);

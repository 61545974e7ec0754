// Load generator for bench/server/run.sh: C concurrent clients, each sending R streamed
// completions one after another.  Prints one JSON line: generated tokens, wall seconds,
// aggregate tokens/s and time-to-first-token percentiles.  Needs only Node's fetch.
// usage: node client.mjs BASE_URL CLIENTS REQUESTS_PER_CLIENT MAX_TOKENS [API_KEY]
const [base, clients, perClient, maxTokens, key] = process.argv.slice(2);
const C = Number(clients), R = Number(perClient), N = Number(maxTokens);
const headers = { 'Content-Type': 'application/json' };
if (key) headers.Authorization = `Bearer ${key}`;

async function one(seed) {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST', headers,
    body: JSON.stringify({ prompt: 'In the beginning God created', max_tokens: N, seed, temperature: 0.8,
                           stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const dec = new TextDecoder();
  let buf = '', ttft = null, tokens = 0;
  for await (const part of res.body) {
    buf += dec.decode(part, { stream: true });
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, at);
      buf = buf.slice(at + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const d = JSON.parse(ev.slice(6));
      if (ttft === null && d.choices?.[0]?.text) ttft = (performance.now() - t0) / 1000;
      if (d.usage) tokens = d.usage.completion_tokens;
    }
  }
  return { ttft: ttft ?? (performance.now() - t0) / 1000, tokens, seconds: (performance.now() - t0) / 1000 };
}

const t0 = performance.now();
const results = [];
await Promise.all(Array.from({ length: C }, async (_, c) => {
  for (let r = 0; r < R; r++) results.push(await one(1000 * c + r + 1));
}));
const wall = (performance.now() - t0) / 1000;
const ttfts = results.map((r) => r.ttft).sort((a, b) => a - b);
const pct = (p) => ttfts[Math.min(ttfts.length - 1, Math.ceil((p / 100) * ttfts.length) - 1)];
const tokens = results.reduce((s, r) => s + r.tokens, 0);
console.log(JSON.stringify({
  clients: C, requests: results.length, max_tokens: N, generated_tokens: tokens, wall_seconds: +wall.toFixed(3),
  tokens_per_second: +(tokens / wall).toFixed(2),
  ttft_p50_seconds: +pct(50).toFixed(4), ttft_p99_seconds: +pct(99).toFixed(4),
}));

#!/usr/bin/env bash
# The server's endpoints with curl: completions, chat, streaming, stop strings, max_tokens, seeds,
# log-probabilities, metrics, and every error the API promises (OpenAI's error shape).
source "$(dirname "$0")/lib.sh"

start_server --parallel 2 --ctx-size 256

# ---- health, models, metrics
st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE/health")
expect_status 200 "$st" "/health"
check "/health says ok" [ "$(js 'd["status"]')" = ok ]
st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE/v1/models")
expect_status 200 "$st" "/v1/models"
check "/v1/models lists the model" [ "$(js 'd["object"] + " " + d["data"][0]["id"] + " " + d["data"][0]["object"]')" = "list $(basename "$MODEL") model" ]
st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE/v1/models/$(basename "$MODEL")")
expect_status 200 "$st" "/v1/models/ID"
st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE/v1/models/gpt-4")
expect_status 404 "$st" "/v1/models/unknown"
expect_error 404 model "/v1/models/unknown"

# ---- completions
st=$(post /v1/completions '{"model":"x","prompt":"In the beginning","max_tokens":5,"seed":42,"temperature":1}')
expect_status 200 "$st" "completion"
check "completion shape" [ "$(js 'd["object"] + " " + d["id"][:5] + " " + str(type(d["created"]) is int) + " " + d["choices"][0]["finish_reason"] + " " + str(d["choices"][0]["index"])')" = "text_completion cmpl- True length 0" ]
check "max_tokens=5 gives 5 tokens" [ "$(js 'd["usage"]["completion_tokens"]')" = 5 ]
check "usage adds up" [ "$(js 'd["usage"]["prompt_tokens"] > 0 and d["usage"]["total_tokens"] == d["usage"]["prompt_tokens"] + 5')" = True ]
text42=$(js 'json.dumps(d["choices"][0]["text"])')

# same seed, same text; another seed, another text
post /v1/completions '{"prompt":"In the beginning","max_tokens":5,"seed":42,"temperature":1}' >/dev/null
check "same seed, same text" [ "$(js 'json.dumps(d["choices"][0]["text"])')" = "$text42" ]
post /v1/completions '{"prompt":"In the beginning","max_tokens":5,"seed":43,"temperature":1}' >/dev/null
check "another seed, another text" [ "$(js 'json.dumps(d["choices"][0]["text"])')" != "$text42" ]

post /v1/completions '{"prompt":"In the beginning","max_tokens":1,"seed":1}' >/dev/null
check "max_tokens=1" [ "$(js 'd["usage"]["completion_tokens"]')" = 1 ]
post /v1/completions '{"prompt":"In the beginning","max_tokens":0}' >/dev/null
check "max_tokens=0: nothing, length" [ "$(js 'd["choices"][0]["text"] + "|" + d["choices"][0]["finish_reason"]')" = "|length" ]
post /v1/completions '{"prompt":"In the beginning","max_completion_tokens":3,"seed":1}' >/dev/null
check "max_completion_tokens" [ "$(js 'd["usage"]["completion_tokens"]')" = 3 ]
post /v1/completions '{"prompt":"In the beginning"}' >/dev/null
check "completions default to 16 tokens" [ "$(js 'd["usage"]["completion_tokens"] <= 16')" = True ]

# unknown fields are ignored, null means "not given"
st=$(post /v1/completions '{"prompt":"x","max_tokens":2,"foo":{"bar":[1,2,{"baz":null}]},"logit_bias":{},"temperature":null,"stop":null,"n":1,"echo":false}')
expect_status 200 "$st" "unknown and null fields"

# ---- stop strings: the text ends before the first occurrence, finish_reason stop
post /v1/completions '{"prompt":"In the beginning","max_tokens":24,"seed":7,"temperature":1}' >/dev/null
full=$(js 'json.dumps(d["choices"][0]["text"])')
stop=$(js 'json.dumps(d["choices"][0]["text"][6:8])')
want=$(python3 -c 'import json,sys; t=json.loads(sys.argv[1]); s=t[6:8]; print(json.dumps(t[:t.find(s)]))' "$full")
post /v1/completions "{\"prompt\":\"In the beginning\",\"max_tokens\":24,\"seed\":7,\"temperature\":1,\"stop\":[\"@@never@@\",$stop]}" >/dev/null
check "stop string cuts the text" [ "$(js 'json.dumps(d["choices"][0]["text"])')" = "$want" ]
check "stop string: finish_reason stop" [ "$(js 'd["choices"][0]["finish_reason"]')" = stop ]
post /v1/completions "{\"prompt\":\"In the beginning\",\"max_tokens\":24,\"seed\":7,\"temperature\":1,\"stop\":$stop,\"stream\":true}" >/dev/null
check "stop string in a stream" [ "$(python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))' < <(sse_text "$WORK/body"))" = "$want" ]

# ---- streaming: the same text as without, [DONE] last, usage when asked
post /v1/completions '{"prompt":"In the beginning","max_tokens":5,"seed":42,"temperature":1,"stream":true,"stream_options":{"include_usage":true}}' -N >/dev/null
check "stream framing" sse_text "$WORK/body" >/dev/null
check "stream text = non-stream text" [ "$(python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))' < <(sse_text "$WORK/body"))" = "$text42" ]
check "stream finish_reason" [ "$(sse_text "$WORK/body" --finish)" = length ]
check "stream usage" [ "$(python3 -c 'import json,sys; u=json.loads(sys.argv[1]); print(u["completion_tokens"])' "$(sse_text "$WORK/body" --usage)")" = 5 ]
check "event-stream content type" curl -s -D - -o /dev/null -d '{"prompt":"x","max_tokens":1,"stream":true}' "$BASE/v1/completions" --output /dev/null -w '%{content_type}' | grep -q text/event-stream

# ---- several prompts, token-id prompts
post /v1/completions '{"prompt":["In the beginning","God created"],"max_tokens":4,"seed":5}' >/dev/null
check "two prompts, two choices" [ "$(js '[c["index"] for c in d["choices"]]')" = "[0, 1]" ]
two=$(js 'json.dumps(d["choices"][1]["text"])')
post /v1/completions '{"prompt":"God created","max_tokens":4,"seed":5}' >/dev/null
check "second prompt alone gives the same" [ "$(js 'json.dumps(d["choices"][0]["text"])')" = "$two" ]
st=$(post /v1/completions '{"prompt":[1,2,3,4],"max_tokens":2}')
expect_status 200 "$st" "token-id prompt"
check "token-id prompt counts its tokens" [ "$(js 'd["usage"]["prompt_tokens"]')" = 4 ]

# ---- log-probabilities
post /v1/completions '{"prompt":"In the beginning","max_tokens":3,"seed":1,"logprobs":2}' >/dev/null
check "completions logprobs" [ "$(js 'lp = d["choices"][0]["logprobs"]; len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(lp["text_offset"]) == 3 and all(x <= 0 for x in lp["token_logprobs"]) and all(1 <= len(t) <= 2 for t in lp["top_logprobs"])')" = True ]

# ---- chat
st=$(post /v1/chat/completions '{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}],"max_tokens":6,"seed":3}')
expect_status 200 "$st" "chat"
check "chat shape" [ "$(js 'd["object"] + " " + d["id"][:9] + " " + d["choices"][0]["message"]["role"] + " " + str(isinstance(d["choices"][0]["message"]["content"], str)) + " " + d["choices"][0]["finish_reason"]')" = "chat.completion chatcmpl- assistant True $(js 'd["choices"][0]["finish_reason"]')" ]
chat=$(js 'json.dumps(d["choices"][0]["message"]["content"])')
check "chat usage" [ "$(js 'd["usage"]["completion_tokens"] <= 6 and d["usage"]["prompt_tokens"] > 2')" = True ]
post /v1/chat/completions '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hel"},{"type":"text","text":"lo"}]}],"max_tokens":6,"seed":3,"stream":true}' -N >/dev/null
check "chat stream = chat (text parts joined)" [ "$(python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))' < <(sse_text "$WORK/body"))" = "$chat" ]
check "chat stream starts with the role" [ "$(head -n1 "$WORK/body" | cut -c7- | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["object"], d["choices"][0]["delta"]["role"])')" = "chat.completion.chunk assistant" ]
post /v1/chat/completions '{"messages":[{"role":"developer","content":"x"},{"role":"user","content":"Hi"},{"role":"assistant","content":null},{"role":"user","content":"again"}],"max_tokens":2,"logprobs":true,"top_logprobs":2}' >/dev/null
check "chat logprobs" [ "$(js 'c = d["choices"][0]["logprobs"]["content"]; len(c) == d["usage"]["completion_tokens"] and all(len(e["top_logprobs"]) == 2 and isinstance(e["bytes"], list) for e in c)')" = True ]

# ---- errors: status, OpenAI's shape, the offending parameter
err() { # err STATUS PARAM PATH JSON WHAT
  local s
  s=$(post "$3" "$4")
  expect_status "$1" "$s" "$5"
  expect_error "$1" "$2" "$5"
}
err 400 "" /v1/completions '{"prompt": "x",' "truncated JSON"
err 400 "" /v1/completions '' "empty body"
err 400 "" /v1/completions '[1,2]' "not an object"
err 400 "" /v1/completions '{"prompt":"x"} {}' "two JSON values"
err 400 prompt /v1/completions '{"max_tokens":2}' "missing prompt"
err 400 prompt /v1/completions '{"prompt":5}' "prompt of the wrong type"
err 400 prompt /v1/completions '{"prompt":[]}' "empty prompt array"
err 400 prompt /v1/completions '{"prompt":[1,99999999]}' "token id out of range"
err 400 model /v1/completions '{"prompt":"x","model":7}' "model not a string"
err 400 temperature /v1/completions '{"prompt":"x","temperature":"hot"}' "temperature a string"
err 400 temperature /v1/completions '{"prompt":"x","temperature":3}' "temperature out of range"
err 400 top_p /v1/completions '{"prompt":"x","top_p":1.5}' "top_p out of range"
err 400 top_k /v1/completions '{"prompt":"x","top_k":2.5}' "top_k not an integer"
err 400 min_p /v1/completions '{"prompt":"x","min_p":-1}' "min_p out of range"
err 400 presence_penalty /v1/completions '{"prompt":"x","presence_penalty":9}' "presence_penalty out of range"
err 400 frequency_penalty /v1/completions '{"prompt":"x","frequency_penalty":"a"}' "frequency_penalty a string"
err 400 repeat_penalty /v1/completions '{"prompt":"x","repeat_penalty":0}' "repeat_penalty zero"
err 400 max_tokens /v1/completions '{"prompt":"x","max_tokens":-1}' "negative max_tokens"
err 400 max_tokens /v1/completions '{"prompt":"x","max_tokens":"5"}' "max_tokens a string"
err 400 max_tokens /v1/completions '{"prompt":"x","max_tokens":1e999}' "max_tokens huge"
err 400 seed /v1/completions '{"prompt":"x","seed":1.5}' "seed not an integer"
err 400 seed /v1/completions '{"prompt":"x","seed":1e30}' "seed beyond 64 bits"
err 400 n /v1/completions '{"prompt":"x","n":2}' "n=2"
err 400 n /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"n":3}' "chat n=3"
err 400 stop /v1/completions '{"prompt":"x","stop":5}' "stop a number"
err 400 stop /v1/completions '{"prompt":"x","stop":["a",1]}' "stop array with a number"
err 400 stream /v1/completions '{"prompt":"x","stream":"yes"}' "stream a string"
err 400 stream_options /v1/completions '{"prompt":"x","stream":true,"stream_options":3}' "stream_options a number"
err 400 stream_options.include_usage /v1/completions '{"prompt":"x","stream":true,"stream_options":{"include_usage":1}}' "include_usage a number"
err 400 logprobs /v1/completions '{"prompt":"x","logprobs":9}' "completions logprobs > 5"
err 400 logprobs /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"logprobs":2}' "chat logprobs not a bool"
err 400 top_logprobs /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"top_logprobs":2}' "top_logprobs without logprobs"
err 400 messages /v1/chat/completions '{"prompt":"x"}' "chat without messages"
err 400 messages /v1/chat/completions '{"messages":"hi"}' "messages a string"
err 400 messages /v1/chat/completions '{"messages":[]}' "messages empty"
err 400 "messages[0].role" /v1/chat/completions '{"messages":[{"role":"wizard","content":"x"}]}' "unknown role"
err 400 "messages[0].content" /v1/chat/completions '{"messages":[{"role":"user","content":5}]}' "content a number"
err 400 "messages[0].content" /v1/chat/completions '{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}' "image content"
err 400 "messages[0].content" /v1/chat/completions '{"messages":[{"role":"user"}]}' "user without content"
# more context than a slot has (256 tokens here)
err 400 prompt /v1/completions '{"prompt":"x","max_tokens":100000}' "max_tokens beyond the context"
check "context error code" [ "$(js 'd["error"]["code"]')" = context_length_exceeded ]
long=$(python3 -c 'print("word " * 400)')
err 400 prompt /v1/completions "{\"prompt\":\"$long\",\"max_tokens\":1}" "prompt beyond the context"
err 400 messages /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"$long\"}]}" "chat beyond the context"
# invalid UTF-8
printf '{"prompt":"\xff\xfe"}' > "$WORK/bad-utf8"
st=$(curl -s -o "$WORK/body" -w '%{http_code}' --data-binary @"$WORK/bad-utf8" "$BASE/v1/completions")
expect_status 400 "$st" "invalid UTF-8"
expect_error 400 "" "invalid UTF-8"
# routing
st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE/v1/nothing")
expect_status 404 "$st" "unknown path"
expect_error 404 "" "unknown path"
st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE/v1/completions")
expect_status 405 "$st" "GET on a POST endpoint"
st=$(curl -s -o "$WORK/body" -w '%{http_code}' -X DELETE "$BASE/health")
expect_status 405 "$st" "DELETE /health"
# bodies over 1 MiB: 413, with or without Content-Length
python3 -c 'import sys; sys.stdout.write("{\"prompt\":\"" + "a" * (1 << 20) + "\"}")' > "$WORK/big"
st=$(curl -s -o "$WORK/body" -w '%{http_code}' --data-binary @"$WORK/big" "$BASE/v1/completions")
expect_status 413 "$st" "1 MiB body"
expect_error 413 "" "1 MiB body"
st=$(curl -s -o "$WORK/body" -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/big" "$BASE/v1/completions")
expect_status 413 "$st" "1 MiB chunked body"

# ---- metrics after all that
st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE/metrics")
expect_status 200 "$st" "/metrics"
for m in 'bitnet_requests_total{endpoint="/v1/completions",status="200"}' \
         'bitnet_requests_total{endpoint="/v1/completions",status="400"}' \
         'bitnet_requests_total{endpoint="/v1/chat/completions",status="200"}' \
         'bitnet_requests_total{endpoint="other",status="404"}' \
         'bitnet_prompt_tokens_total' 'bitnet_generated_tokens_total' \
         'bitnet_time_to_first_token_seconds_bucket{le="+Inf"}' 'bitnet_time_to_first_token_seconds_count' \
         'bitnet_token_latency_seconds_bucket{le="0.1"}' 'bitnet_queue_depth 0' 'bitnet_active_slots 0' 'bitnet_slots 2'; do
  check "metric $m" grep -qF "$m" "$WORK/body"
done
check "generated tokens counted" [ "$(sed -n 's/^bitnet_generated_tokens_total \([0-9]*\)$/\1/p' "$WORK/body")" -gt 30 ]
stop_server

# ---- --stream-interval: text that comes within 1000 ms of the last send waits, and goes out as one
# chunk; the end is never held.  200 tokens take tens of milliseconds: the first chunk goes at once,
# the rest of the text waits, and the end sends it as one chunk (then the finish chunk) at once,
# not a second later
start_server --stream-interval 1000
long='{"prompt":"In the beginning God created the heaven and the earth. And the earth was without form, and void","max_tokens":24,"seed":7,"temperature":1}'
post /v1/completions "$long" >/dev/null
want_long=$(js 'json.dumps(d["choices"][0]["text"])')
post /v1/completions '{"prompt":"In the beginning","max_tokens":200,"seed":42,"temperature":1}' >/dev/null
want200=$(js 'json.dumps(d["choices"][0]["text"])')
n200=$(js 'd["usage"]["completion_tokens"]')
t0=$(date +%s.%N)
post /v1/completions '{"prompt":"In the beginning","max_tokens":200,"seed":42,"temperature":1,"stream":true}' -N >/dev/null
t1=$(date +%s.%N)
check "held chunks: stream framing" sse_text "$WORK/body" >/dev/null
check "held chunks: stream text = non-stream text" [ "$(python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))' < <(sse_text "$WORK/body"))" = "$want200" ]
nev=$(grep -c '^data: {' "$WORK/body")
check "held chunks: the held text is one chunk ($nev events for $n200 tokens)" [ "$nev" -ge 2 -a "$nev" -le 4 ]
dt=$(python3 -c "print(round($t1 - $t0, 2))")
check "held chunks: the end is not held ($dt s < 0.9 s)" python3 -c "import sys; sys.exit(not ($dt < 0.9))"
stop_server
for bad in -1 1001 x; do
  check "--stream-interval $bad refused" [ "$("$BITNET" serve --stream-interval "$bad" >/dev/null 2>&1; echo $?)" = 2 ]
done

# ---- -b/--batch-size 3: a prompt goes in pieces of 3 tokens, sharing passes with another slot's
# generation; the same text as in one piece (the results do not depend on how tokens are batched)
start_server -b 3 --parallel 2
post /v1/completions '{"prompt":"In the beginning","max_tokens":150,"seed":1,"stream":true}' -N >/dev/null &
bg=$!
post2() { curl -s -o "$WORK/body2" -w '%{http_code}' -H 'Content-Type: application/json' -d "$1" "$BASE/v1/completions"; }
check "pieces of 3: 200" [ "$(post2 "$long")" = 200 ]
check "pieces of 3: the same text" [ "$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["choices"][0]["text"]))' "$WORK/body2")" = "$want_long" ]
check "pieces of 3: the prompt's tokens counted" [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["usage"]["prompt_tokens"] > 6)' "$WORK/body2")" = True ]
wait $bg
stop_server
for bad in 0 x; do
  check "-b $bad refused" [ "$("$BITNET" serve -b "$bad" >/dev/null 2>&1; echo $?)" = 2 ]
done

# ---- API key (bitnet-server, the same server as a program of its own)
if [ $# -ge 2 ]; then SERVER_CMD=("$2"); fi
start_server --api-key 's3cret key'
st=$(post /v1/completions '{"prompt":"x","max_tokens":1}')
expect_status 401 "$st" "no API key"
expect_error 401 "" "no API key"
check "401 names the scheme" curl -s -D - -o /dev/null "$BASE/v1/models" | grep -qi '^WWW-Authenticate: Bearer'
st=$(post /v1/completions '{"prompt":"x","max_tokens":1}' -H 'Authorization: Bearer s3cret kez')
expect_status 401 "$st" "wrong API key"
st=$(post /v1/completions '{"prompt":"x","max_tokens":1}' -H 'Authorization: Bearer s3cret key!')
expect_status 401 "$st" "longer API key"
st=$(post /v1/completions '{"prompt":"x","max_tokens":1}' -H 'Authorization: Bearer s3cret key')
expect_status 200 "$st" "right API key"
st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE/metrics")
expect_status 401 "$st" "/metrics needs the key"
st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE/health")
expect_status 200 "$st" "/health needs no key"

# ---- SIGTERM lets a request in flight finish
curl -s -N -o "$WORK/inflight" -H 'Authorization: Bearer s3cret key' \
  -d '{"prompt":"In the beginning","max_tokens":120,"stream":true,"seed":1}' "$BASE/v1/completions" &
cpid=$!
for _ in $(seq 100); do [ -s "$WORK/inflight" ] && break; sleep 0.02; done
stop_server
wait $cpid
check "in-flight stream completed after SIGTERM" sse_text "$WORK/inflight" >/dev/null
finish

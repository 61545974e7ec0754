"""Reads a Server-Sent Events body from the server and prints the text it carries.

Checks the framing as OpenAI clients expect it: every event is `data: JSON` followed by a blank
line, the last one is `data: [DONE]`, exactly one chunk per choice has a finish_reason.
Prints the text of choice 0 (other choices: --choice N); --finish prints the finish reason and
--usage the usage object instead.  Exits 1 on a framing error."""
import json
import sys

args = sys.argv[1:]
path = args[0]
choice = 0
want = "text"
if "--choice" in args:
    choice = int(args[args.index("--choice") + 1])
if "--finish" in args:
    want = "finish"
if "--usage" in args:
    want = "usage"

raw = open(path, "rb").read().decode("utf-8")
events = raw.split("\n\n")
if events[-1] != "":
    sys.exit("stream does not end with a blank line: %r" % raw[-80:])
events = events[:-1]
if not events or events[-1] != "data: [DONE]":
    sys.exit("stream does not end with data: [DONE]")
text = []
finish = None
usage = None
for ev in events[:-1]:
    if not ev.startswith("data: "):
        sys.exit("not a data event: %r" % ev[:80])
    d = json.loads(ev[6:])
    if "error" in d:
        sys.exit("error event: %r" % d)
    if d.get("usage"):
        usage = d["usage"]
    for c in d["choices"]:
        if c["index"] != choice:
            continue
        if "delta" in c:
            text.append(c["delta"].get("content") or "")
        else:
            text.append(c["text"])
        if c.get("finish_reason"):
            if finish:
                sys.exit("two finish reasons")
            finish = c["finish_reason"]
if finish is None:
    sys.exit("no finish_reason")
if want == "text":
    sys.stdout.write("".join(text))
elif want == "finish":
    print(finish)
else:
    print(json.dumps(usage))

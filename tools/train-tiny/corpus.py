"""The training corpus: the King James Bible from Debian's bible-kjv-text package.

`bible` (package bible-kjv) prints any verse range; asking for Gen1:1-Rev22:21 with a
very wide line limit dumps the whole text in book order, one verse per line, with a
"Book N" heading before each chapter.  We keep the headings, drop the verse numbers
(they carry no language and would cost the tiny model capacity), and separate chapters
by a blank line.  The last 5% by book order (split at a chapter boundary) is held out.
"""
import re
import subprocess

HELD_OUT_FRACTION = 0.05


def dump_kjv():
    """Whole KJV as printed by `bible`, in book order."""
    out = subprocess.run(["bible", "-l1000000", "Gen1:1-Rev22:21"],
                         check=True, capture_output=True, text=True).stdout
    return out


def chapters(raw):
    """List of (heading, [verse texts]) in book order."""
    result = []
    heading_re = re.compile(r"^(\S.*) (\d+)$")
    verse_re = re.compile(r"^\s+\d+ (.*)$")
    for line in raw.split("\n"):
        if not line.strip():
            continue
        m = heading_re.match(line)
        if m:
            result.append((line, []))
            continue
        m = verse_re.match(line)
        if not m or not result:
            raise ValueError("unexpected line in bible output: %r" % line)
        result[-1][1].append(m.group(1).strip())
    return result


def chapter_text(heading, verses):
    return heading + "\n" + "\n".join(verses) + "\n"


def build():
    """Returns (train_text, heldout_text, info dict)."""
    chs = chapters(dump_kjv())
    texts = [chapter_text(h, v) for h, v in chs]
    total = sum(len(t) for t in texts)
    # First chapter boundary at or after 95% of the characters.
    acc = 0
    split = len(texts)
    for i, t in enumerate(texts):
        if acc >= (1.0 - HELD_OUT_FRACTION) * total:
            split = i
            break
        acc += len(t)
    train = "\n".join(texts[:split])
    heldout = "\n".join(texts[split:])
    info = {
        "chapters": len(texts),
        "train_chapters": split,
        "heldout_first_chapter": chs[split][0],
        "train_chars": len(train),
        "heldout_chars": len(heldout),
    }
    return train, heldout, info


if __name__ == "__main__":
    tr, ho, info = build()
    print(info)
    print(tr[:300])

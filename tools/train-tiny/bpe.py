"""Byte-level BPE tokenizer: training, encoding, and Hugging Face tokenizer.json output.

Text is split with the Llama-3 pre-tokenizer regex (Python's `regex` module, Debian
package python3-regex, provides \\p{L}/\\p{N}), each piece is turned into bytes and each
byte into its GPT-2 printable stand-in character.  Training repeatedly merges the most
frequent adjacent pair inside pieces (ties broken by the smaller pair of byte strings),
so merge rank = training order; the standard encoder (merge the lowest-rank pair present
until none applies) therefore reproduces the training-time segmentation, which `check()`
verifies.
"""
import collections
import json

import regex

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPLIT_RE = regex.compile(LLAMA3_PATTERN)

SPECIAL_TOKENS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|reserved_special_token_2|>",
]


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable characters."""
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1))
            + list(range(ord("\xae"), ord("\xff") + 1)))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def pretokenize(text):
    return SPLIT_RE.findall(text)


class Tokenizer:
    """Token i < 256 is byte i; then merged tokens in rank order; specials last."""

    def __init__(self, merges, n_vocab):
        self.merges = merges  # list of (left id, right id) in rank order
        self.tok_bytes = [bytes([b]) for b in range(256)]
        self.rank = {}
        self.merge_result = {}
        by_bytes = {b: i for i, b in enumerate(self.tok_bytes)}
        for r, (a, b) in enumerate(merges):
            joined = self.tok_bytes[a] + self.tok_bytes[b]
            if joined in by_bytes:
                raise ValueError("duplicate token from merge %d" % r)
            by_bytes[joined] = len(self.tok_bytes)
            self.tok_bytes.append(joined)
            self.rank[(a, b)] = r
            self.merge_result[(a, b)] = by_bytes[joined]
        n_special = n_vocab - len(self.tok_bytes)
        if n_special < len(SPECIAL_TOKENS):
            raise ValueError("vocab too small for the special tokens")
        self.specials = SPECIAL_TOKENS + ["<|reserved_special_token_%d|>" % i
                                          for i in range(3, 3 + n_special - len(SPECIAL_TOKENS))]
        self.special_base = len(self.tok_bytes)
        self.n_vocab = n_vocab
        self._cache = {}

    def special_id(self, name):
        return self.special_base + self.specials.index(name)

    @property
    def bos_id(self):
        return self.special_id("<|begin_of_text|>")

    @property
    def eos_id(self):
        return self.special_id("<|end_of_text|>")

    @property
    def eot_id(self):
        return self.special_id("<|eot_id|>")

    def token_str(self, i):
        """The vocabulary string: GPT-2 characters for normal tokens, the name for specials."""
        if i >= self.special_base:
            return self.specials[i - self.special_base]
        return "".join(BYTE_TO_CHAR[b] for b in self.tok_bytes[i])

    def encode_piece(self, piece):
        ids = self._cache.get(piece)
        if ids is not None:
            return ids
        ids = list(piece.encode("utf-8"))
        while len(ids) > 1:
            best = None
            for k in range(len(ids) - 1):
                r = self.rank.get((ids[k], ids[k + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, k)
            if best is None:
                break
            pair = (ids[best[1]], ids[best[1] + 1])
            new = self.merge_result[pair]
            out = []
            k = 0
            while k < len(ids):  # every occurrence, left to right
                if k + 1 < len(ids) and (ids[k], ids[k + 1]) == pair:
                    out.append(new)
                    k += 2
                else:
                    out.append(ids[k])
                    k += 1
            ids = out
        self._cache[piece] = ids
        return ids

    def encode(self, text):
        """Plain text (special-token names are not parsed)."""
        out = []
        for p in pretokenize(text):
            out.extend(self.encode_piece(p))
        return out

    def decode(self, ids):
        bs = b"".join(self.tok_bytes[i] if i < self.special_base
                      else self.specials[i - self.special_base].encode() for i in ids)
        return bs.decode("utf-8", errors="replace")

    # --- Hugging Face tokenizer.json ------------------------------------------------
    def to_hf_json(self):
        vocab = {self.token_str(i): i for i in range(self.special_base)}
        merges = ["%s %s" % (self.token_str(a), self.token_str(b)) for a, b in self.merges]
        added = [{"id": self.special_base + k, "content": s, "single_word": False,
                  "lstrip": False, "rstrip": False, "normalized": False, "special": True}
                 for k, s in enumerate(self.specials)]
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": {
                "type": "Sequence",
                "pretokenizers": [
                    {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN},
                     "behavior": "Isolated", "invert": False},
                    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                     "use_regex": False},
                ],
            },
            # Adds BOS, as the GGUF's add_bos_token=true says engines should.
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                           {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                         {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>",
                                                         "ids": [self.bos_id],
                                                         "tokens": ["<|begin_of_text|>"]}},
            },
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                        "use_regex": True},
            "model": {
                "type": "BPE", "dropout": None, "unk_token": None,
                "continuing_subword_prefix": None, "end_of_word_suffix": None,
                "fuse_unk": False, "byte_fallback": False,
                # Every vocabulary string encodes to itself through the merges (check()),
                # so ignore_merges true or false gives the same ids; false = plain BPE.
                "ignore_merges": False,
                "vocab": vocab, "merges": merges,
            },
        }

    @classmethod
    def from_hf_json(cls, path):
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        vocab = tj["model"]["vocab"]
        merges = []
        for m in tj["model"]["merges"]:
            a, b = m.split(" ")
            merges.append((vocab[a], vocab[b]))
        n_vocab = len(vocab) + len(tj["added_tokens"])
        tok = cls(merges, n_vocab)
        for i in range(tok.special_base):
            if vocab[tok.token_str(i)] != i:
                raise ValueError("tokenizer.json ids are not in the expected order")
        return tok

    def check(self, words=()):
        """Every token's string encodes to exactly that token; given words re-encode as trained."""
        for i in range(256, self.special_base):
            piece = self.tok_bytes[i].decode("latin-1")
            ids = list(self.tok_bytes[i])
            # Encode from raw bytes (a token may not be valid UTF-8 on its own).
            got = self._encode_bytes(ids)
            if got != [i]:
                raise AssertionError("token %d %r encodes to %r" % (i, piece, got))
        for w, seg in words:
            if self.encode_piece(w) != seg:
                raise AssertionError("word %r: %r vs trained %r" % (w, self.encode_piece(w), seg))

    def _encode_bytes(self, ids):
        saved = self._cache
        self._cache = {}
        try:
            key = "\0bytes" + ",".join(map(str, ids))
            # Reuse encode_piece's loop on a byte list.
            while len(ids) > 1:
                cands = [(self.rank[(ids[k], ids[k + 1])], k) for k in range(len(ids) - 1)
                         if (ids[k], ids[k + 1]) in self.rank]
                if not cands:
                    break
                r, k = min(cands)
                pair = (ids[k], ids[k + 1])
                out, k = [], 0
                while k < len(ids):
                    if k + 1 < len(ids) and (ids[k], ids[k + 1]) == pair:
                        out.append(self.merge_result[pair])
                        k += 2
                    else:
                        out.append(ids[k])
                        k += 1
                ids = out
            del key
            return ids
        finally:
            self._cache = saved


def train(text, n_vocab, n_special=len(SPECIAL_TOKENS), log=print):
    """Learn n_vocab - 256 - n_special merges from text. Returns (Tokenizer, trained words)."""
    counts = collections.Counter(pretokenize(text))
    words = list(counts.keys())
    freqs = [counts[w] for w in words]
    segs = [list(w.encode("utf-8")) for w in words]
    tok_bytes = [bytes([b]) for b in range(256)]
    pair_count = collections.Counter()
    pair_where = collections.defaultdict(set)
    for wi, s in enumerate(segs):
        for k in range(len(s) - 1):
            p = (s[k], s[k + 1])
            pair_count[p] += freqs[wi]
            pair_where[p].add(wi)
    merges = []
    n_merges = n_vocab - 256 - n_special
    while len(merges) < n_merges:
        if not pair_count:
            raise ValueError("corpus too small for %d merges" % n_merges)
        top = max(pair_count.values())
        best = min((p for p, c in pair_count.items() if c == top),
                   key=lambda p: (tok_bytes[p[0]], tok_bytes[p[1]]))
        new_id = len(tok_bytes)
        tok_bytes.append(tok_bytes[best[0]] + tok_bytes[best[1]])
        merges.append(best)
        for wi in list(pair_where[best]):
            s = segs[wi]
            f = freqs[wi]
            for k in range(len(s) - 1):
                p = (s[k], s[k + 1])
                pair_count[p] -= f
                if pair_count[p] == 0:
                    del pair_count[p]
                pair_where[p].discard(wi)
            out, k = [], 0
            while k < len(s):
                if k + 1 < len(s) and (s[k], s[k + 1]) == best:
                    out.append(new_id)
                    k += 2
                else:
                    out.append(s[k])
                    k += 1
            segs[wi] = out
            for k in range(len(out) - 1):
                p = (out[k], out[k + 1])
                pair_count[p] += f
                pair_where[p].add(wi)
        pair_where.pop(best, None)
        if len(merges) % 500 == 0:
            log("bpe: %d merges, last %r (count %d)" % (len(merges), tok_bytes[-1], top))
    tok = Tokenizer(merges, n_vocab)
    return tok, list(zip(words, segs))

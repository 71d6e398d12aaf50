#!/usr/bin/python3
"""The guide model's SentencePiece-style ("llama") vocabulary: built by BPE on the corpus,
encoded in Python exactly as the engine's tokenizer (router/engine/tokenizer_spm.cc) does.

Layout: <unk>, <s>, </s>, the chat markers <|system|>, <|user|>, <|assistant|>, <|end|>
(control tokens), the 256 byte tokens <0x00>..<0xFF>, every character of the corpus, then one
piece per BPE merge ("▁word" pieces), scored -rank so the engine's highest-score-first merging
replays the merges in training order.

Chat format (also the GGUF's tokenizer.chat_template): <s><|user|>TEXT<|end|><|assistant|>TEXT<|end|>...
Each TEXT segment follows a control token, so the engine gives it the leading "▁".

Usage:
    /usr/bin/python3 resources/models/train/tidelane_vocab.py --corpus data/train.jsonl --size 3000 --out data/vocab.json
"""
import argparse
import collections
import heapq
import json

SPACE = "\u2581"
CONTROL = ["<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
UNK, BOS, EOS, SYSTEM, USER, ASSISTANT, END = range(7)
ROLE_TOKEN = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}
N_BYTES = 256
FIRST_BYTE = len(CONTROL)
CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}"
                 "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}")
# Token types (llama.cpp): 1 normal, 2 unknown, 3 control, 6 byte.
TYPE_NORMAL, TYPE_UNKNOWN, TYPE_CONTROL, TYPE_BYTE = 1, 2, 3, 6


def segment_text(text):
    """What the engine's SPM encoder sees for a text segment after a control token."""
    return SPACE + text.replace(" ", SPACE)


def words_of(seg):
    """Splits at each ▁ (kept at the start of its word)."""
    out, cur = [], ""
    for ch in seg:
        if ch == SPACE and cur:
            out.append(cur)
            cur = ""
        cur += ch
    if cur:
        out.append(cur)
    return out


def split_punct(word):
    """For BPE training only: punctuation is kept apart from letters, so pieces are words
    ("▁night") and punctuation runs ("??"), not "▁night??"."""
    out, cur = [], ""
    for ch in word:
        if cur and (ch.isalnum() or ch in "'" + SPACE) != (cur[-1].isalnum() or cur[-1] in "'" + SPACE):
            out.append(cur)
            cur = ""
        cur += ch
    if cur:
        out.append(cur)
    return out


def build(corpus_path, size):
    freq = collections.Counter()
    chars = collections.Counter()
    with open(corpus_path) as f:
        for line in f:
            for m in json.loads(line)["messages"]:
                for w in words_of(segment_text(m["content"])):
                    for part in split_punct(w):
                        freq[part] += 1
    for w, c in freq.items():
        for ch in w:
            chars[ch] += c
    base = sorted(chars, key=lambda ch: (-chars[ch], ch))
    n_fixed = len(CONTROL) + N_BYTES + len(base)
    words = [[list(w), c] for w, c in sorted(freq.items())]
    merges = []
    pieces = set(base)
    while n_fixed + len(merges) < size:
        pairs = collections.Counter()
        for syms, c in words:
            for a, b in zip(syms, syms[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        (a, b), count = best
        if count < 2:
            break
        new = a + b
        if new in pieces:   # already a piece (a different split); merge without a new token
            pass
        else:
            merges.append(new)
            pieces.add(new)
        for wc in words:
            syms = wc[0]
            i, out = 0, []
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            wc[0] = out
    tokens = CONTROL + [f"<0x{b:02X}>" for b in range(N_BYTES)] + base + merges
    types = ([TYPE_UNKNOWN] + [TYPE_CONTROL] * (len(CONTROL) - 1) + [TYPE_BYTE] * N_BYTES
             + [TYPE_NORMAL] * (len(base) + len(merges)))
    scores = ([0.0] * (len(CONTROL) + N_BYTES) + [-1e6 - i for i in range(len(base))]
              + [-float(i) for i in range(len(merges))])
    return {"tokens": tokens, "types": types, "scores": scores, "chat_template": CHAT_TEMPLATE}


class Encoder:
    """SPM BPE-by-score, as tokenizer_spm.cc: highest-scoring adjacent pair first, leftmost on
    ties; characters with no token fall back to byte tokens."""

    def __init__(self, vocab):
        self.tokens = vocab["tokens"]
        self.scores = vocab["scores"]
        self.types = vocab["types"]
        self.id = {}
        for i, t in enumerate(self.tokens):
            if self.types[i] != TYPE_BYTE:
                self.id.setdefault(t, i)
        self.cache = {}

    def _word(self, w):
        got = self.cache.get(w)
        if got is not None:
            return got
        syms = list(w)
        size = [len(s) for s in syms]
        nxt = list(range(1, len(syms))) + [-1]
        prv = list(range(-1, len(syms) - 1))
        text = list(syms)
        heap = []

        def push(l, r):
            if l < 0 or r < 0:
                return
            pair = text[l] + text[r]
            tid = self.id.get(pair)
            if tid is not None and self.types[tid] == TYPE_NORMAL:
                heapq.heappush(heap, (-self.scores[tid], l, r, len(pair)))

        for i in range(1, len(syms)):
            push(i - 1, i)
        while heap:
            _, l, r, n = heapq.heappop(heap)
            if size[l] == 0 or size[r] == 0 or len(text[l]) + len(text[r]) != n:
                continue
            if nxt[l] != r:
                continue
            text[l] += text[r]
            size[l] += size[r]
            size[r] = 0
            text[r] = ""
            nxt[l] = nxt[r]
            if nxt[r] >= 0:
                prv[nxt[r]] = l
            push(prv[l], l)
            push(l, nxt[l])
        out = []
        i = 0
        while i != -1:
            piece = text[i]
            tid = self.id.get(piece)
            if tid is not None and self.types[tid] == TYPE_NORMAL:
                out.append(tid)
            else:
                out += [FIRST_BYTE + b for b in piece.encode("utf-8")]
            i = nxt[i]
        self.cache[w] = out
        return out

    def encode_segment(self, text):
        out = []
        for w in words_of(segment_text(text)):
            out += self._word(w)
        return out

    def encode_chat(self, messages, add_generation_prompt=False):
        """Token ids and a mask (1 where the model is trained to predict that token: the
        assistant's words and its closing <|end|>)."""
        ids, mask = [BOS], [0]
        for m in messages:
            body = self.encode_segment(m["content"])
            learn = 1 if m["role"] == "assistant" else 0
            ids += [ROLE_TOKEN[m["role"]]] + body + [END]
            mask += [0] + [learn] * len(body) + [learn]
        if add_generation_prompt:
            ids.append(ASSISTANT)
            mask.append(0)
        return ids, mask

    def decode(self, ids):
        b = bytearray()
        for i in ids:
            t = self.types[i]
            if t == TYPE_BYTE:
                b.append(i - FIRST_BYTE)
            elif t == TYPE_NORMAL:
                b += self.tokens[i].replace(SPACE, " ").encode("utf-8")
        s = b.decode("utf-8", errors="replace")
        return s[1:] if s.startswith(" ") else s


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--size", type=int, default=3000)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    v = build(args.corpus, args.size)
    with open(args.out, "w") as f:
        json.dump(v, f, ensure_ascii=False)
    n_merges = sum(1 for t in v["types"] if t == TYPE_NORMAL)
    print(f"wrote {args.out}: {len(v['tokens'])} tokens ({n_merges} normal pieces)")


if __name__ == "__main__":
    main()

"""A character-level language model: a small decoder-only transformer predicting the next character.

The model (``CharTransformer``): token and learned position embeddings (width 64), two pre-LayerNorm
blocks (causal self-attention with 4 heads through ``scaled_dot_product_attention(is_causal=True)``,
separate query, key, value and output projections; an MLP 64 -> 256 -> 64 with GELU), a final
LayerNorm and an untied output layer (not the token embedding's transpose), no biases in the linear
layers; GPT-2's initialisation (normal, std 0.02; the residual projections 0.02 / sqrt(2 * layers)).
The embeddings and the output layer are marked as such (``PARAM_ROLE``), so that Muon-style
optimizers keep them on AdamW (optbench.optim.muon).

The data: a text split into three contiguous blocks, 90% training, 5% validation, 5% test (in that
order), each cut into non-overlapping windows of 64 characters whose targets are the same characters
shifted by one; the loss is the cross-entropy of every position of every window (the first
position of a window sees no context, as in nanoGPT's evaluation). Held-out metrics over the whole
validation or test block: the loss, bits per character (``bpc`` = loss / ln 2, the main metric) and
the fraction of next characters predicted right. The vocabulary is the training block's characters
plus one *unknown* symbol that stands for any character the training block lacks (none in
tiny-shakespeare, where all 65 occur in the first 90%); the model never sees it as a target, so such
a character costs what the model's low probability for it says, and is never dropped.

One epoch is one pass over a fixed, seeded sample of the training windows (``rows=N``, default
``DEFAULT_WINDOWS``; numpy's ``RandomState(42)`` permutation of the windows, the same for every run),
in the run's own seeded order: short epochs give the curves, time to target and early stopping
several points within a minute's budget.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from optbench.datasets.text import load_tinyshakespeare
from optbench.errors import UserError
from optbench.spec.dataset import SAMPLE_SEED, DatasetRef
from optbench.spec.vocabulary import PARAM_ROLE
from optbench.tasks.base import ClassificationTask, TaskData

CONTEXT = 64
WIDTH = 64
LAYERS = 2
HEADS = 4
# Training windows per epoch when the dataset names no rows=N: 4,096 x 64 = 262,144 characters.
DEFAULT_WINDOWS = 4096
SPLIT = (0.90, 0.05)  # training and validation fractions; the rest is the test block
UNKNOWN = "\x00"  # the vocabulary's last symbol: any character the training block lacks
INIT_STD = 0.02
SYNTHETIC_CHARS = 300_000


@dataclass
class TextData(TaskData):
    """``TaskData`` of windows, with the validation block's windows: a validation run trains on all
    training windows and is evaluated on the validation block (never a part of the training text)."""

    vocab_size: int = 0
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    def to(self, device: torch.device) -> TextData:
        moved = super().to(device)
        return TextData(moved.x_train, moved.y_train, moved.x_test, moved.y_test, moved.target_scale,
                        moved.reference, self.vocab_size,
                        *(t.to(device) if t is not None else None for t in (self.x_val, self.y_val)))

    def validation_split(self, fraction: float = 0.0, seed: int = 0) -> TextData:
        """The validation block in place of the test block (``fraction`` and ``seed`` do not apply:
        the blocks are fixed); the test block's reference values are dropped, as the base class does."""
        if self.x_val is None or self.y_val is None:
            raise ValueError("this is already a validation view: it has no validation block of its own")
        return TextData(self.x_train, self.y_train, self.x_val, self.y_val, vocab_size=self.vocab_size)


@functools.cache  # a few tenths of a second; runs in one process on other data dirs share it
def synthetic_text(n_chars: int = SYNTHETIC_CHARS, seed: int = 0) -> str:
    """A seeded text with structure to learn, over 33 characters (a-z, space, newline, ``,;.!?``).

    A lexicon of 400 words, spelled by a letter Markov chain (each letter favours a few successors);
    words follow each other by a word Markov chain (each word has 8 likely successors, Zipf
    weighted; one word in 10 is drawn from the whole lexicon by Zipf's law instead); sentences of
    3-12 words end in ``.``, ``!`` or ``?``, a comma follows one word in 16 and a semicolon one in 48
    inside a sentence, and one sentence in 4 ends its line. A model that learns the spellings and
    the word pairs gets far below the uniform guess over the 34 symbols with the unknown one
    (log2(34) = 5.09 bits per character) and below the character frequencies (4.61).
    """
    rng = np.random.RandomState(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    first = rng.dirichlet(np.full(26, 0.5))
    follow = rng.dirichlet(np.full(26, 0.15), size=26)
    words = []
    while len(words) < 400:
        length = int(np.clip(rng.poisson(4) + 1, 1, 10))
        chars = [rng.choice(26, p=first)]
        for _ in range(length - 1):
            chars.append(rng.choice(26, p=follow[chars[-1]]))
        word = "".join(letters[chars])
        if word not in words:
            words.append(word)
    zipf = 1 / np.arange(1, len(words) + 1)
    cumulative = (np.cumsum(zipf) / zipf.sum()).tolist()
    successors = rng.randint(0, len(words), size=(len(words), 8)).tolist()
    favoured = (np.cumsum(zipf[:8]) / zipf[:8].sum()).tolist()
    out, size, word, left = [], 0, 0, 0
    while size < n_chars:
        for u in rng.random_sample((4096, 5)).tolist():
            word, left, piece = _next_word(u, word, left, words, cumulative, successors, favoured)
            out.append(piece)
            size += len(piece)
    return "".join(out)[:n_chars]


def _next_word(u: list[float], word: int, left: int, words: list[str], cumulative: list[float],
               successors: list[list[int]], favoured: list[float]) -> tuple[int, int, str]:
    """One word of ``synthetic_text`` from five uniform draws ``u``: (word, words left in the sentence, text)."""
    if left == 0:  # a new sentence
        left = 3 + int(u[0] * 10)
    if u[1] < 0.1:
        word = min(bisect.bisect(cumulative, u[2]), len(words) - 1)
    else:
        word = successors[word][min(bisect.bisect(favoured, u[2]), 7)]
    left -= 1
    if left == 0:
        return word, left, words[word] + ".!?"[int(u[3] * 3)] + ("\n" if u[4] < 0.25 else " ")
    return word, left, words[word] + ("," if u[3] < 1 / 16 else ";" if u[3] < 1 / 12 else "") + " "


def split_text(text: str) -> tuple[str, str, str]:
    """The training, validation and test blocks: the first 90%, the next 5%, the last 5%."""
    a, b = int(len(text) * SPLIT[0]), int(len(text) * sum(SPLIT))
    return text[:a], text[a:b], text[b:]


def vocabulary(train: str) -> str:
    """The training block's characters in code-point order, then ``UNKNOWN``."""
    return "".join(sorted(set(train) - {UNKNOWN})) + UNKNOWN


def encode(text: str, vocab: str) -> torch.Tensor:
    """Character ids (int64); a character not in ``vocab`` is the unknown symbol."""
    table = np.full(0x110000, len(vocab) - 1, dtype=np.int64)
    table[[ord(c) for c in vocab]] = np.arange(len(vocab))
    return torch.from_numpy(table[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)])


def windows(ids: torch.Tensor, context: int = CONTEXT) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows ``(inputs, targets)``, each ``(N, context)``: targets are the inputs shifted by one."""
    n = (len(ids) - 1) // context
    return ids[: n * context].view(n, context), ids[1 : n * context + 1].view(n, context)


def text_data(text: str, rows: int | None, dataset: str) -> TextData:
    """The windows of the three blocks, the training windows sampled (``rows``, default ``DEFAULT_WINDOWS``),
    and the reference values of the test block."""
    train, val, test = split_text(text)
    vocab = vocabulary(train)
    x_train, y_train = windows(encode(train, vocab))
    x_val, y_val = windows(encode(val, vocab))
    x_test, y_test = windows(encode(test, vocab))
    if min(len(x_train), len(x_val), len(x_test)) == 0:
        raise UserError(f"dataset '{dataset}' is too short for {CONTEXT}-character windows in each of its "
                        f"training, validation and test blocks ({len(text):,} characters)")
    wanted = DEFAULT_WINDOWS if rows is None else rows
    if rows is not None and rows > len(x_train):
        raise UserError(f"{dataset}:rows={rows} asks for more training windows than the text has "
                        f"({len(x_train):,} of {CONTEXT} characters); choose rows={len(x_train)} or fewer")
    if wanted < len(x_train):
        keep = torch.from_numpy(np.random.RandomState(SAMPLE_SEED).permutation(len(x_train))[:wanted])
        x_train, y_train = x_train[keep], y_train[keep]
    return TextData(x_train, y_train, x_test, y_test, reference=references(encode(train, vocab), y_test, len(vocab)),
                    vocab_size=len(vocab), x_val=x_val, y_val=y_val)


def references(train_ids: torch.Tensor, test_targets: torch.Tensor, size: int) -> dict[str, float]:
    """The test block's bits per character and loss of two models without context: the uniform
    guess over the vocabulary, and the training block's character frequencies (add-one smoothed,
    so that every symbol has some probability)."""
    counts = torch.bincount(train_ids, minlength=size).double() + 1
    unigram = -(counts / counts.sum()).log()[test_targets.reshape(-1)].mean().item()
    return {"chance_loss": math.log(size), "chance_bpc": math.log2(size), "unigram_bpc": unigram / math.log(2)}


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.query, self.key, self.value, self.out = (nn.Linear(width, width, bias=False) for _ in range(4))
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width, bias=False)
        self.proj = nn.Linear(4 * width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        h = self.ln1(x)
        q, k, v = (m(h).view(b, t, self.heads, c // self.heads).transpose(1, 2) for m in (self.query, self.key, self.value))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.out(attended.transpose(1, 2).reshape(b, t, c))
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


class CharTransformer(nn.Module):
    """Embeddings, ``LAYERS`` blocks, final LayerNorm, untied output layer: logits ``(B, T, vocab)``."""

    def __init__(self, vocab: int, context: int = CONTEXT, width: int = WIDTH, layers: int = LAYERS,
                 heads: int = HEADS) -> None:
        super().__init__()
        self.token = nn.Embedding(vocab, width)
        self.position = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=INIT_STD)
        for block in self.blocks:
            for residual in (block.out, block.proj):
                nn.init.normal_(residual.weight, std=INIT_STD / math.sqrt(2 * layers))
        for param, role in ((self.token.weight, "embedding"), (self.position.weight, "embedding"), (self.head.weight, "head")):
            setattr(param, PARAM_ROLE, role)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.token(ids) + self.position.weight[: ids.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


class CharLanguageModel(ClassificationTask):
    """The code of task 'charlm' (its name, datasets and defaults: ``optbench.tasks.catalog``)."""

    eval_batch_size = 512  # windows: 512 x 64 positions of logits at a time

    def load(self, dataset: str, data_dir: Path) -> TaskData:
        ref = DatasetRef.parse(dataset)
        text = load_tinyshakespeare(data_dir) if ref.name == "tinyshakespeare" else synthetic_text()
        return text_data(text, ref.option("rows"), ref.name)

    def build_model(self, data: TaskData) -> nn.Module:
        if not isinstance(data, TextData):
            raise TypeError("charlm builds its model from its own TextData (the vocabulary's size)")
        return CharTransformer(data.vocab_size)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.flatten(0, 1), target.flatten())

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: TaskData) -> dict[str, float]:
        """Loss, bits per character and next-character accuracy over every position of every window
        of the evaluation block (``test_*`` names, as ``Task.evaluate``)."""
        model.eval()
        loss_sum = torch.zeros((), device=data.x_test.device, dtype=torch.float64)
        correct = torch.zeros((), device=data.x_test.device, dtype=torch.int64)
        for i in range(0, len(data.x_test), self.eval_batch_size):
            xb, yb = data.x_test[i : i + self.eval_batch_size], data.y_test[i : i + self.eval_batch_size]
            out = model(xb)
            loss_sum += F.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="sum").double()
            correct += (out.argmax(-1) == yb).sum()
        model.train()
        n = data.y_test.numel()
        return self.held_out_metrics(loss_sum.item() / n, correct.item() / n, data)

    def held_out_metrics(self, test_loss: float, accuracy: float, data: TaskData) -> dict[str, float]:
        bpc = test_loss / math.log(2) if math.isfinite(test_loss) else math.inf
        return {"test_loss": test_loss, "test_bpc": bpc, "test_accuracy": accuracy, **data.reference}

"""The unsupervised architecture encoder of Sankaran et al.

Fitting has two stages, both on token sequences of architectures that need no training:

1. gensim word2vec (skip-gram) learns one vector per layer token. As in the paper, every sequence
   enters the corpus ``copies`` times, each copy with 20 % of its tokens replaced by ``UNK``, so
   that ``UNK`` gets a meaningful vector for layers outside the vocabulary.
2. A 2-layer LSTM language model (next-token prediction, decoder weights tied to the embedding, as
   in the paper) whose embedding is initialised from the word2vec vectors is trained on the same
   corrupted corpus.

`ArchitectureEncoder.encode` runs ``<s> tokens </s>`` through the LSTM and returns the mean of the
top layer's hidden states over the sequence (``pooling="mean"``, the default: it separated model
families better than the final state in our tests) or the final hidden state (``pooling="last"``).
Both have length ``dim``.

Fitting is deterministic given ``seed`` on CPU (single-threaded word2vec with a process-independent
hash; torch seeded in a forked RNG so the caller's global torch RNG is untouched). Fitting runs
torch on one thread (the process-wide setting is restored afterwards, so do not fit from several
threads at once): the model is tiny, and on a busy machine intra-op threads made fitting ten times
slower, not faster.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from gensim.models import Word2Vec
from torch import nn

from nasdb.schema.errors import InvalidRequest, NotFound

from ._tokens import BOS, EOS, PAD, UNK, Architecture, Vocabulary, tokenize

__all__ = ["ENCODER_FORMAT", "ArchitectureEncoder"]

#: Format string stored in every saved encoder; `ArchitectureEncoder.load` refuses others.
ENCODER_FORMAT = "nasdb-encoder/1"

Pooling = Literal["mean", "last"]


def _stable_hash(text: str) -> int:
    """A hash for gensim's vector seeding that does not depend on PYTHONHASHSEED."""
    return zlib.crc32(text.encode("utf-8"))


def _corrupt(
    sequences: Sequence[Sequence[str]], copies: int, unk_rate: float, rng: np.random.Generator
) -> list[list[str]]:
    """``copies`` copies of each sequence with each token replaced by UNK with ``unk_rate``."""
    out: list[list[str]] = []
    for sequence in sequences:
        for _ in range(copies):
            mask = rng.random(len(sequence)) < unk_rate
            out.append([UNK if m else t for t, m in zip(sequence, mask, strict=True)])
    return out


@contextmanager
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _LanguageModel(nn.Module):
    """Embedding -> 2-layer LSTM -> tied linear decoder over the vocabulary."""

    def __init__(self, vocab_size: int, dim: int, layers: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.lstm = nn.LSTM(dim, dim, num_layers=layers, batch_first=True)
        self.decoder = nn.Linear(dim, vocab_size)
        self.decoder.weight = self.embedding.weight

    def hidden(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-layer hidden states (B, T, dim) and the final state of the top layer (B, dim)."""
        states, (h_n, _) = self.lstm(self.embedding(ids))
        return states, h_n[-1]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        states, _ = self.hidden(ids)
        return self.decoder(states)


def _batch(ids: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, T) id tensor and the (B,) lengths."""
    lengths = torch.tensor([len(s) for s in ids], dtype=torch.long)
    out = torch.zeros((len(ids), int(lengths.max())), dtype=torch.long)
    for row, sequence in enumerate(ids):
        out[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
    return out, lengths


class ArchitectureEncoder:
    """Maps any architecture to a fixed-length vector; see the module docstring for the method.

    Build one with `fit` or `load`. A fitted encoder is read-only: `encode` may be called from
    several threads.
    """

    def __init__(
        self,
        vocabulary: Vocabulary,
        model: _LanguageModel,
        *,
        dim: int,
        layers: int,
        pooling: Pooling,
        seed: int,
        corpus_fingerprint: str,
        history: list[float],
    ) -> None:
        self.vocabulary = vocabulary
        self._model = model.eval()
        self.dim = dim
        self.layers = layers
        self.pooling: Pooling = pooling
        self.seed = seed
        #: sha256 over the training token sequences, for the RecommenderTrained event.
        self.corpus_fingerprint = corpus_fingerprint
        #: mean next-token cross-entropy per LSTM epoch (the perplexity is its exp).
        self.history = history

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        token_sequences: Sequence[Sequence[str]],
        *,
        dim: int = 32,
        seed: int = 0,
        epochs: int = 8,
        w2v_epochs: int = 10,
        copies: int = 3,
        unk_rate: float = 0.2,
        layers: int = 2,
        batch_size: int = 64,
        lr: float = 0.01,
        pooling: Pooling = "mean",
    ) -> ArchitectureEncoder:
        """Fit word2vec and the LSTM language model on ``token_sequences`` (see `tokenize`).

        Raises `InvalidRequest` when there is no non-empty sequence or a setting is out of range.
        """
        sequences = [list(s) for s in token_sequences if len(s) > 0]
        if not sequences:
            raise InvalidRequest(
                "cannot fit the architecture encoder on an empty corpus; "
                "give at least one non-empty architecture"
            )
        if dim < 2 or epochs < 0 or w2v_epochs < 1 or copies < 1 or layers < 1:
            raise InvalidRequest(
                f"encoder settings out of range: dim={dim} (>= 2), epochs={epochs} (>= 0), "
                f"w2v_epochs={w2v_epochs} (>= 1), copies={copies} (>= 1), layers={layers} (>= 1)"
            )
        if not 0.0 <= unk_rate < 1.0:
            raise InvalidRequest(f"unk_rate must be in [0, 1); got {unk_rate}")
        if pooling not in ("mean", "last"):
            raise InvalidRequest(f"pooling must be 'mean' or 'last'; got {pooling!r}")
        fingerprint = hashlib.sha256(
            json.dumps(sequences, separators=(",", ":")).encode("utf-8")
        ).hexdigest()

        rng = np.random.default_rng(seed)
        corpus = _corrupt(sequences, copies, unk_rate, rng)
        vocabulary = Vocabulary.build([*sequences, [UNK]])

        w2v = Word2Vec(
            sentences=[[BOS, *s, EOS] for s in corpus],
            vector_size=dim,
            window=3,
            min_count=1,
            sg=1,
            workers=1,
            seed=seed,
            epochs=w2v_epochs,
            hashfxn=_stable_hash,
        )
        with torch.random.fork_rng(devices=[]), _one_thread():
            torch.manual_seed(seed)
            model = _LanguageModel(len(vocabulary), dim, layers)
            with torch.no_grad():
                for index, token in enumerate(vocabulary.tokens):
                    if token != PAD and token in w2v.wv.key_to_index:
                        model.embedding.weight[index] = torch.from_numpy(
                            np.array(w2v.wv[token], dtype=np.float32)
                        )
                model.embedding.weight[0].zero_()
            history = cls._train_lm(model, vocabulary, corpus, epochs, batch_size, lr, seed)
        return cls(
            vocabulary,
            model,
            dim=dim,
            layers=layers,
            pooling=pooling,
            seed=seed,
            corpus_fingerprint=fingerprint,
            history=history,
        )

    @classmethod
    def fit_architectures(
        cls, architectures: Sequence[Architecture], **settings: object
    ) -> ArchitectureEncoder:
        """`fit` on architectures (layer lists or architecture dicts) instead of token lists."""
        if not architectures:
            raise InvalidRequest(
                "cannot fit the architecture encoder on an empty list of architectures; "
                "sample some first (nasdb recommend fit-encoder does)"
            )
        return cls.fit([tokenize(a) for a in architectures], **settings)  # type: ignore[arg-type]

    @staticmethod
    def _train_lm(
        model: _LanguageModel,
        vocabulary: Vocabulary,
        corpus: list[list[str]],
        epochs: int,
        batch_size: int,
        lr: float,
        seed: int,
    ) -> list[float]:
        encoded = [vocabulary.encode([BOS, *s, EOS]) for s in corpus]
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        loss_fn = nn.CrossEntropyLoss(ignore_index=0)
        order_rng = np.random.default_rng(seed + 1)
        history: list[float] = []
        model.train()
        for _ in range(epochs):
            order = order_rng.permutation(len(encoded))
            total, count = 0.0, 0
            for start in range(0, len(order), batch_size):
                ids, _ = _batch([encoded[i] for i in order[start : start + batch_size]])
                logits = model(ids[:, :-1])
                loss = loss_fn(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                total += loss.item() * ids.shape[0]
                count += ids.shape[0]
            history.append(total / count)
        model.eval()
        return history

    # ------------------------------------------------------------------ encoding
    def encode_tokens(self, token_sequences: Sequence[Sequence[str]]) -> np.ndarray:
        """Vectors (n, dim) float32 of token sequences; unknown tokens count as ``UNK``.

        An empty sequence is encoded as ``<s> </s>``.
        """
        if len(token_sequences) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = [self.vocabulary.encode([BOS, *s, EOS]) for s in token_sequences]
        batch, lengths = _batch(ids)
        with torch.no_grad():
            states, _ = self._model.hidden(batch)
            if self.pooling == "mean":
                mask = (torch.arange(batch.shape[1])[None, :] < lengths[:, None]).float()
                vectors = (states * mask[..., None]).sum(1) / lengths[:, None].float()
            else:
                vectors = states[torch.arange(len(ids)), lengths - 1]
        return vectors.numpy().astype(np.float32)

    def encode(self, architecture: Architecture) -> np.ndarray:
        """The (dim,) vector of one architecture (layer list or architecture JSON dict)."""
        return self.encode_tokens([tokenize(architecture)])[0]

    def encode_many(self, architectures: Sequence[Architecture]) -> np.ndarray:
        """Vectors (n, dim) of many architectures, in order."""
        return self.encode_tokens([tokenize(a) for a in architectures])

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the encoder to one file (torch.save of a dict of tensors, JSON text, numbers)."""
        torch.save(
            {
                "format": ENCODER_FORMAT,
                "vocabulary": json.dumps(self.vocabulary.to_json()),
                "state": self._model.state_dict(),
                "dim": self.dim,
                "layers": self.layers,
                "pooling": self.pooling,
                "seed": self.seed,
                "corpus_fingerprint": self.corpus_fingerprint,
                "history": list(self.history),
            },
            Path(path),
        )

    @classmethod
    def load(cls, path: str | Path) -> ArchitectureEncoder:
        """Read an encoder written by `save`.

        Raises `NotFound` when the file does not exist and `InvalidRequest` when it is not an
        encoder of this format (refit it with ``nasdb recommend fit-encoder``).
        """
        path = Path(path)
        if not path.exists():
            raise NotFound(f"no encoder file at {path}; fit one with `nasdb recommend fit-encoder`")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several unrelated types for a bad file
            raise InvalidRequest(
                f"{path} is not a saved architecture encoder ({e.__class__.__name__}); "
                "refit it with `nasdb recommend fit-encoder`"
            ) from e
        found = blob.get("format") if isinstance(blob, dict) else None
        if found != ENCODER_FORMAT:
            raise InvalidRequest(
                f"{path} holds encoder format {found!r}, this code reads {ENCODER_FORMAT!r}; "
                "refit it with `nasdb recommend fit-encoder`"
            )
        vocabulary = Vocabulary.from_json(json.loads(blob["vocabulary"]))
        model = _LanguageModel(len(vocabulary), int(blob["dim"]), int(blob["layers"]))
        model.load_state_dict(blob["state"])
        return cls(
            vocabulary,
            model,
            dim=int(blob["dim"]),
            layers=int(blob["layers"]),
            pooling=blob["pooling"],
            seed=int(blob["seed"]),
            corpus_fingerprint=str(blob["corpus_fingerprint"]),
            history=[float(x) for x in blob["history"]],
        )

"""What training reads: the songs split into training and held-out ones, encoded once with their transpositions, and cut into tf.data batches; the data's digest and how its songs open."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synth.music.events import NUM_LENGTHS, Event, encode, format_length
from synth.music.notes import NUM_CLASSES, REST
from synth.music.songs import Song, transposition_shifts

MIN_SONGS_TO_HOLD_OUT = 5


@dataclass
class Corpus:
    """Songs encoded once, end to end, and the copies to train on: (song, shift, weight).

    The input pipeline transposes and cuts each copy into chunks as it goes, so memory holds
    the songs once, never every transposition of them (issue 12)."""

    classes: np.ndarray  # int32: every song's classes, one song after another
    lengths: np.ndarray  # int32: their length classes
    starts: np.ndarray  # int64: where each song begins, and the end of the last one
    song: np.ndarray  # int32 per copy: which song
    shift: np.ndarray  # int32 per copy: semitones up (0: as written)
    weight: np.ndarray  # float32 per copy: its events' weight

    def chunk_count(self, length: int) -> int:
        """How many `length`-event chunks one pass over the copies gives."""
        targets = np.diff(self.starts)[self.song] - 1
        return int((-(-targets // length)).sum())

    def weighted_events(self) -> float:
        """The training targets counted by their weights (the manifest's augmented events)."""
        return float(((np.diff(self.starts)[self.song] - 1) * self.weight).sum())

    def copies(self) -> "Transposed":
        """Every copy as an event list, for the baselines that read songs rather than batches."""
        return Transposed(self)


class Transposed(Sequence):
    """The corpus's copies as event lists, made one at a time when asked for."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus

    def __len__(self) -> int:
        return len(self.corpus.song)

    def __getitem__(self, index):
        c = self.corpus
        song, shift = int(c.song[index]), int(c.shift[index])
        begin, end = int(c.starts[song]), int(c.starts[song + 1])
        return [Event(int(k) + shift if k != REST else REST, int(q) + 1)
                for k, q in zip(c.classes[begin:end], c.lengths[begin:end])]


def corpus(songs: Sequence[Song], augment: bool) -> Corpus:
    """Encode songs; with `augment`, one copy per in-range transposition of each song (lengths
    unchanged), weighted so that every song counts as much as its own events however many
    transpositions its range allows (a narrow chorale has more than a wide fiddle tune;
    unweighted, the model would learn that chorales are commoner than they are). The weights
    average 1 over the events."""
    encoded = [encode(s.events if isinstance(s, Song) else s) for s in songs]
    sizes = np.array([len(cls) for cls, _ in encoded], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    song_of, shift_of, share = [], [], []
    for index, (cls, _) in enumerate(encoded):
        shifts = transposition_shifts(cls.tolist()) if augment else range(1)
        song_of.extend([index] * len(shifts))
        shift_of.extend(shifts)
        share.extend([1.0 / len(shifts)] * len(shifts))
    song_of, share = np.array(song_of, dtype=np.int32), np.array(share)
    events = sizes[song_of].astype(np.float64)
    weight = share * events.sum() / (events * share).sum()
    return Corpus(classes=np.concatenate([cls for cls, _ in encoded]).astype(np.int32),
                  lengths=np.concatenate([q for _, q in encoded]).astype(np.int32),
                  starts=starts, song=song_of, shift=np.array(shift_of, dtype=np.int32),
                  weight=weight.astype(np.float32))


SHUFFLE_CHUNKS = 4096  # chunks mixed at once: the whole of a small dataset, 6 MB at most


def pipeline(data: Corpus, length: int, batch_size: int, epochs: range | None = None,
             seed: int = 0):
    """A tf.data pipeline of batches: inputs (batch, length, 3) = class, length class and next
    class (which the length head reads: teacher forcing); targets (batch, length, 2) = next
    class and next length class; weights (batch, length), 0 on padding. Each copy is
    transposed and cut into consecutive chunks as it is read, so one pass reads each event
    once. With `epochs` the copies and chunks are shuffled, seeded by the epoch (a resumed run
    sees what an uninterrupted one would); without, one pass in order (held-out songs). Each
    pass is padded with weight-0 chunks to whole batches, so that distribution strategies can
    split every batch evenly across replicas."""
    import tensorflow as tf

    classes, lengths = tf.constant(data.classes), tf.constant(data.lengths)
    starts = tf.constant(data.starts)
    missing = -data.chunk_count(length) % batch_size

    def cut(song, shift, weight):
        begin, end = starts[song], starts[song + 1]
        cls, lens = classes[begin:end], lengths[begin:end]
        cls = tf.where(cls == REST, cls, cls + shift)
        count = tf.cast(end - begin - 1, tf.int32)
        pad = -count % length

        def rows(values):
            return tf.reshape(tf.pad(values, [[0, pad]]), [-1, length])

        inputs = tf.stack([rows(cls[:-1]), rows(lens[:-1]), rows(cls[1:])], axis=-1)
        targets = tf.stack([rows(cls[1:]), rows(lens[1:])], axis=-1)
        return tf.data.Dataset.from_tensor_slices((inputs, targets,
                                                   rows(tf.fill([count], weight))))

    padding = tf.data.Dataset.from_tensors(
        (tf.zeros([length, 3], tf.int32), tf.zeros([length, 2], tf.int32),
         tf.zeros([length], tf.float32))).repeat(missing)
    copies = tf.data.Dataset.from_tensor_slices((data.song, data.shift, data.weight))

    def one_pass(epoch=None):
        ds = copies
        if epoch is not None:
            ds = ds.shuffle(len(data.song), seed=seed * 100_003 + epoch)
        ds = ds.flat_map(cut)
        if epoch is not None:
            ds = ds.shuffle(SHUFFLE_CHUNKS, seed=seed * 100_003 + epoch + 50_000)
        return ds.concatenate(padding).batch(batch_size, drop_remainder=True)

    if epochs is None:
        ds = one_pass()
    else:  # one pass per epoch, each shuffled by its own seed
        ds = one_pass(epochs.start) if epochs else one_pass().take(0)
        for epoch in epochs[1:]:
            ds = ds.concatenate(one_pass(epoch))
    batches = (data.chunk_count(length) + missing) // batch_size * (len(epochs) if epochs is not None else 1)
    ds = ds.apply(tf.data.experimental.assert_cardinality(batches))  # Keras needs the count
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    return ds.with_options(options).prefetch(2)


def split_songs(songs: Sequence[Song], fraction: float, seed: int) -> tuple[list[Song], list[Song]]:
    """(training songs, held-out songs), whole songs only, chosen by `seed`."""
    if len(songs) < MIN_SONGS_TO_HOLD_OUT or fraction == 0:
        return list(songs), []
    count = min(max(1, round(fraction * len(songs))), len(songs) - 1)
    order = np.random.default_rng(seed).permutation(len(songs))
    held = set(order[:count].tolist())
    return ([s for i, s in enumerate(songs) if i not in held],
            [s for i, s in enumerate(songs) if i in held])


def data_digest(songs: Sequence[Song]) -> str:
    """The songs' events as one sha256: the model folder names the data it was trained on, and
    a checkpoint resumes only on the same data."""
    digest = hashlib.sha256()
    for song in songs:
        digest.update(" ".join(f"{e.cls}:{format_length(e.quarters)}"
                               for e in song.events).encode() + b"\n")
    return digest.hexdigest()


def opening(songs: Sequence[Song]) -> tuple[list[float], list[list[float]]]:
    """How training songs open: the first class, and the first length given that class (each
    row smoothed towards all first lengths, so a class no song opens with still has one)."""
    first = np.bincount([s.events[0].cls for s in songs], minlength=NUM_CLASSES) + 0.0
    lengths = np.zeros((NUM_CLASSES, NUM_LENGTHS))
    for song in songs:
        lengths[song.events[0].cls, song.events[0].quarters - 1] += 1
    prior = lengths.sum(axis=0) / lengths.sum()
    lengths += prior
    return ((first / first.sum()).tolist(),
            (lengths / lengths.sum(axis=1, keepdims=True)).round(6).tolist())


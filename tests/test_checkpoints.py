"""Resuming a killed training from its checkpoint ends as an uninterrupted one (issue 15): slow,
so marked; CI still runs them."""

import numpy as np
import pytest

from test_train import FAST, small_songs

pytestmark = pytest.mark.slow


class Stop:
    """A reporter that stops training (as a kill would) after a given epoch, and keeps what
    training tells the user."""

    def __init__(self, after=None):
        self.after, self.notes, self.epochs = after, [], []

    def start(self, epochs, batches): pass
    def batch(self, epoch, batch, logs): pass

    def epoch(self, epoch, logs):
        self.epochs.append(epoch)
        if epoch == self.after:
            raise KeyboardInterrupt

    def note(self, text):
        self.notes.append(text)


def test_a_resumed_training_ends_as_an_uninterrupted_one(tmp_path):
    from synth.learn.checkpoints import checkpoint_folder
    from synth.learn.train import TrainSettings, train
    from synth.learn.model import load_model

    settings = TrainSettings(**{**FAST, "epochs": 4})
    whole = train(small_songs(10), tmp_path / "a", settings)
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "b", settings, Stop(after=2))
    assert not (tmp_path / "b").exists() and checkpoint_folder(tmp_path / "b").is_dir()
    resumed = Stop()
    result = train(small_songs(10), tmp_path / "b", settings, resumed)
    assert resumed.notes == [f"Resuming after epoch 2 of 4 from the checkpoint in "
                             f"{checkpoint_folder(tmp_path / 'b')} (--restart starts afresh)."]
    assert resumed.epochs == [2, 3]
    assert result.epochs_run == whole.epochs_run == 4 and result.best_epoch == whole.best_epoch
    a, b = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert not checkpoint_folder(tmp_path / "b").exists()  # gone once the model is written


def test_early_stopping_and_the_time_limit_carry_across_a_resume(tmp_path):
    from synth.learn.train import TrainSettings, train

    # learning rate 1: held-out loss rises from the first epoch, so patience 2 stops at 3
    settings = TrainSettings(**{**FAST, "epochs": 20}, learning_rate=1.0, patience=2)
    whole = train(small_songs(10), tmp_path / "a", settings)
    assert whole.stopped_by == "early stopping"
    stop = whole.epochs_run - 2
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "b", settings, Stop(after=stop))
    result = train(small_songs(10), tmp_path / "b", settings)
    assert (result.stopped_by, result.epochs_run, result.best_epoch) == \
        (whole.stopped_by, whole.epochs_run, whole.best_epoch)
    assert result.held_out.loss == pytest.approx(whole.held_out.loss, rel=1e-6)

    # --max-minutes is not a setting the checkpoint must match: a resumed run may set it
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "c", TrainSettings(**{**FAST, "epochs": 50}),
              Stop(after=1))
    result = train(small_songs(10), tmp_path / "c",
                   TrainSettings(**{**FAST, "epochs": 50}, max_minutes=1e-4))
    assert (result.stopped_by, result.epochs_run) == ("the time limit", 2)


def test_a_checkpoint_of_other_settings_or_songs_is_not_resumed(tmp_path):
    from synth.learn.checkpoints import checkpoint_folder
    from synth.learn.train import TrainSettings, train

    settings = TrainSettings(**{**FAST, "epochs": 3})
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "m", settings, Stop(after=1))
    other = Stop()
    result = train(small_songs(10), tmp_path / "m", TrainSettings(**{**FAST, "epochs": 3},
                                                                  seed=1), other)
    assert other.notes == [f"Starting afresh: the checkpoint in {checkpoint_folder(tmp_path / 'm')} "
                           "cannot be resumed: it is from a different dataset or different "
                           "settings."]
    assert other.epochs == [0, 1, 2] and result.epochs_run == 3
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "m", settings, Stop(after=1))
    fewer = Stop()
    train(small_songs(9), tmp_path / "m", settings, fewer)
    assert "different dataset" in fewer.notes[0] and fewer.epochs == [0, 1, 2]
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "m", settings, Stop(after=1))
    restarted = Stop()
    train(small_songs(10), tmp_path / "m", settings, restarted, restart=True)
    assert restarted.notes == [] and restarted.epochs == [0, 1, 2]


def test_killed_after_the_last_epoch_but_before_the_save_it_only_saves(tmp_path, monkeypatch):
    import synth.learn.train
    from synth.learn.checkpoints import checkpoint_folder
    from synth.learn.train import TrainSettings, train
    from synth.learn.model import load_model

    settings = TrainSettings(**{**FAST, "epochs": 2})
    whole = train(small_songs(10), tmp_path / "a", settings)
    saving = synth.learn.train.save_model

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synth.learn.train, "save_model", killed)
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "b", settings)
    monkeypatch.setattr(synth.learn.train, "save_model", saving)
    again = Stop()
    result = train(small_songs(10), tmp_path / "b", settings, again)
    assert again.notes[0].startswith("Resuming after epoch 2 of 2") and again.epochs == []
    assert (result.epochs_run, result.stopped_by) == (2, "the last epoch")
    a, b = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert not checkpoint_folder(tmp_path / "b").exists()

"""`training_dataset` as the trainer sees it: fixed batch size, one size per batch, infinite,
deterministic under a seed, and resumable: start_batch=n gives batch n of a run from 0 without
decoding the skipped samples."""

import numpy as np
import pytest
import tensorflow as tf

from osmn.config import RECIPES
from osmn.data import sample_stream, training_dataset
from osmn.data.coco import coco_source
from osmn.data.davis import davis_source
from osmn.errors import UserError

from conftest import DATA
from test_data_sources import SMALL, write_davis17


def davis_cfg(**kw):
    values = dict(batch_size=3, image_sizes=((48, 64), (32, 48), (40, 72)), seed=4)
    values.update(kw)
    return RECIPES["davis_stage2"].replace(**values)


def batches(cfg, root, n, start_batch=0):
    return [tf.nest.map_structure(lambda t: t.numpy(), b)
            for b in training_dataset(cfg, str(root), start_batch).take(n)]


def assert_same(a, b):
    tf.nest.map_structure(np.testing.assert_array_equal, a, b)


def differ(a, b):
    return any(x.shape != y.shape or not np.array_equal(x, y)
               for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b)))


def test_davis_determinism_resume_and_sizes(tmp_path):
    root = write_davis17(tmp_path / "d17", names=("a", "b"), n=4)  # 12 samples
    cfg = davis_cfg(batch_size=5, image_sizes=((48, 64), (32, 48), SMALL))
    # Batch 5 over 12 samples: batch 2 straddles epochs 0 and 1, batch 5 is in epoch 2.
    run = batches(cfg, root, 7)
    assert_same(run, batches(cfg, root, 7))  # same seed -> identical batches
    for n in (1, 2, 5):
        assert_same(batches(cfg, root, 1, start_batch=n)[0], run[n])
    sizes = {b[0]["image"].shape[1:3] for b in run}
    assert len(sizes) > 1 and sizes <= set(cfg.image_sizes)
    for inputs, label in run:
        assert inputs["image"].shape[0] == 5 and label.shape[:3] == inputs["image"].shape[:3]
        assert inputs["spatial_guide"].shape[:3] == inputs["image"].shape[:3]
    other = batches(cfg.replace(seed=5), root, 2)
    assert differ(run[0], other[0]) or differ(run[1], other[1])


def test_epochs_are_permutations_and_reshuffled(tmp_path):
    root = write_davis17(tmp_path / "d17", names=("a", "b"), n=4)  # 12 samples
    cfg = davis_cfg(batch_size=4, image_sizes=((32, 48),))
    source = davis_source(str(root))

    class Spy:  # reports each element's sample index in its void mask
        num_samples = source.num_samples

        def make_sample(self, index, seed, h, w, perturb_guide=True):
            inputs, label, void = source.make_sample(index, seed, h, w, perturb_guide)
            return inputs, label, tf.fill(tf.shape(void), tf.cast(index, tf.float32))

    seen = [int(void.numpy().flat[0]) for _, _, _, void in sample_stream(Spy(), cfg).take(36)]
    epochs = [seen[i:i + 12] for i in (0, 12, 24)]
    for epoch in epochs:
        assert sorted(epoch) == list(range(12))
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]


def test_start_batch_does_not_decode_skipped_samples(davis_sample):
    cfg = davis_cfg(batch_size=2)
    source = davis_source(str(davis_sample))
    calls = []

    class Counting:
        num_samples = source.num_samples

        def make_sample(self, index, seed, h, w, perturb_guide=True):
            calls.append(1)  # traced once per map function, not per element
            counter.assign_add(1)
            return source.make_sample(index, seed, h, w, perturb_guide)

    counter = tf.Variable(0, dtype=tf.int64)
    stream = sample_stream(Counting(), cfg, start_batch=1000, num_parallel_calls=1)
    next(iter(stream))
    assert int(counter.numpy()) <= 4  # far fewer than the 2000 skipped samples


def test_coco_determinism_and_resume():
    cfg = RECIPES["coco_stage1"].replace(batch_size=2, image_sizes=((40, 40), (32, 32)), seed=9)
    root = DATA / "coco_sample"
    run = batches(cfg, root, 4)
    assert_same(run, batches(cfg, root, 4))
    assert_same(batches(cfg, root, 1, start_batch=3)[0], run[3])
    for inputs, label in run:
        assert inputs["image"].shape[1] == inputs["image"].shape[2]  # square, aspect not kept


def test_with_void_and_report(davis_sample):
    ds = training_dataset(davis_cfg(), str(davis_sample), with_void=True)
    inputs, label, void = next(iter(ds))
    assert void.shape == label.shape and void.dtype == tf.float32
    assert "kept 1 sequences" in ds.report.summary()


def test_negative_start_batch_is_user_error(davis_sample):
    with pytest.raises(UserError, match="start_batch"):
        training_dataset(davis_cfg(), str(davis_sample), start_batch=-1)


def test_file_failing_at_run_time_drops_its_batch_only(tmp_path, capfd):
    # A file that passed the index checks but fails later (here: deleted after the build)
    # drops the batches that need it; training goes on with full batches of one size each.
    root = write_davis17(tmp_path / "d17", names=("a", "b"), n=4)
    cfg = davis_cfg(batch_size=2, image_sizes=((32, 48), (48, 64)), randomize_guide=False)
    reference = batches(cfg, root, 24)  # four epochs
    ds = training_dataset(cfg, str(root))
    (root / "JPEGImages/480p/a/00003.jpg").unlink()  # target frame of 2 of the 12 samples
    damaged = [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds.take(12)]
    assert len(damaged) == 12
    for inputs, label in damaged:
        assert inputs["image"].shape[0] == 2 and label.shape[0] == 2
    # Every batch that arrives is a batch of the undamaged run, in order, with some skipped.
    positions = []
    for batch in damaged:
        matches = [i for i, ref in enumerate(reference) if not differ(batch, ref)]
        assert matches, "a damaged-run batch is not a batch of the reference run"
        positions.append(matches[0])
    assert positions == sorted(positions) and len(set(positions)) == 12 and positions[-1] > 11
    assert "dropped: a sample failed to decode" in capfd.readouterr().err  # and said so


@pytest.mark.parametrize("source", ["davis", "coco"])
def test_perturb_spatial_guide_switch(source, davis_sample):
    # Table 3's "- spatial guide augmentation" ablation: without perturbation the spatial
    # guide does not depend on the sample seed; everything else is the same augmentation.
    if source == "davis":
        cfg = davis_cfg(batch_size=2, image_sizes=((48, 64),))
        root = davis_sample
    else:
        cfg = RECIPES["coco_stage1"].replace(batch_size=2, image_sizes=((40, 40),), seed=9)
        root = DATA / "coco_sample"
    perturbed = batches(cfg, root, 2)
    plain = batches(cfg.replace(perturb_spatial_guide=False), root, 2)
    for (p_in, p_label), (q_in, q_label) in zip(perturbed, plain):
        np.testing.assert_array_equal(p_label, q_label)
        np.testing.assert_array_equal(p_in["image"], q_in["image"])
        np.testing.assert_array_equal(p_in["visual_guide"], q_in["visual_guide"])
    assert any(not np.array_equal(p[0]["spatial_guide"], q[0]["spatial_guide"])
               for p, q in zip(perturbed, plain))
    # Unperturbed, the same sample gets the same guide under any seed.
    source_obj = (davis_source if source == "davis" else coco_source)(str(root))
    guides = [source_obj.make_sample(tf.constant(0, tf.int64), tf.constant(s, tf.int64), 40, 56,
                                     perturb_guide=perturb)[0]["spatial_guide"].numpy()
              for perturb in (False, True) for s in ([1, 2], [3, 4])]
    np.testing.assert_array_equal(guides[0], guides[1])
    assert not np.array_equal(guides[2], guides[3])
    assert guides[0].max() == pytest.approx(1.0, abs=0.05)

"""The native modulation kernel (osmn/kernels): same values as the XLA pass, built and cached
safely, and a clear fallback when it cannot be built."""


import numpy as np
import pytest
import tensorflow as tf

from osmn.errors import UserError
from osmn.kernels import build
from osmn.model import OSMN
from osmn.inference.engine import LocalEngine, modulation_pass
from layer_checks import randomize_weights as randomize

needs_compiler = pytest.mark.skipif(build.compiler() is None,
                                    reason="no C++ compiler to build the native kernel")


def pass_inputs(batch, objects, height, width, channels, seed=0):
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(0, 2, (batch, height, width, channels)), tf.float32)
    gamma = tf.constant(rng.normal(0, 1, (objects, channels)), tf.float32)
    guide = tf.constant(rng.uniform(0, 1, (objects, height, width, 1)), tf.float32)
    scale = tf.constant(rng.normal(0, 1, channels), tf.float32)
    shift = tf.constant(rng.normal(0, 1, channels), tf.float32)
    return x, gamma, guide, scale, shift


@needs_compiler
@pytest.mark.parametrize("batch,objects,height,width,channels", [
    (1, 1, 9, 13, 64),    # whole 32-channel steps
    (1, 3, 7, 5, 40),     # the shared frame broadcast to K = 3; a 8-channel scalar tail
    (2, 2, 4, 6, 16),     # fewer channels than one vector step
])
def test_native_pass_equals_the_xla_pass(batch, objects, height, width, channels):
    x, gamma, guide, scale, shift = pass_inputs(batch, objects, height, width, channels)
    low = tf.cast(x, tf.bfloat16)
    expected = modulation_pass.modulate_xla(low, gamma, tf.cast(guide, tf.bfloat16), scale,
                                            shift)
    actual = modulation_pass.modulate_native(low, gamma, tf.cast(guide, tf.bfloat16), scale,
                                             shift)
    assert actual.shape == (objects, height, width, channels) and actual.dtype == tf.bfloat16
    # bfloat16: the same float32 arithmetic and one round-to-nearest-even: identical bits.
    np.testing.assert_array_equal(tf.bitcast(actual, tf.uint16).numpy(),
                                  tf.bitcast(expected, tf.uint16).numpy())
    # float32: the same up to the single rounding of an FMA instruction.
    np.testing.assert_allclose(modulation_pass.modulate_native(x, gamma, guide, scale, shift),
                               modulation_pass.modulate_xla(x, gamma, guide, scale, shift),
                               rtol=1e-6, atol=1e-6)
    # And what it stands for: relu(guide * scale + shift) + x * gamma, in numpy.
    reference = (np.broadcast_to(x.numpy(), (objects, height, width, channels))
                 * gamma.numpy()[:, None, None, :]
                 + np.maximum(guide.numpy() * scale.numpy() + shift.numpy(), 0))
    np.testing.assert_allclose(modulation_pass.modulate_native(x, gamma, guide, scale, shift),
                               reference, rtol=1e-5, atol=1e-5)


@needs_compiler
@pytest.mark.parametrize("batch,objects,height,width,channels,pool", [
    (1, 1, 9, 13, 64, True),    # odd sizes: the SAME pool's last row and column hold 1-2 pixels
    (1, 3, 7, 5, 40, True),     # the shared frame broadcast to K = 3; a channel tail
    (2, 2, 4, 6, 16, False),    # conv5_3: taps only
    (1, 2, 5, 7, 32, False),    # the same on the whole-pixel bfloat16 loop (C % 32 == 0)
])
def test_single_op_block_end_equals_pass_then_pool_and_taps(batch, objects, height, width,
                                                         channels, pool):
    x, gamma, guide, scale, shift = pass_inputs(batch, objects, height, width, channels)
    kernel = tf.constant(np.random.default_rng(1).normal(0, 1, (channels, 9)), tf.float32)
    for dtype in (tf.bfloat16, tf.float32):
        low = tf.cast(x, dtype)
        m = modulation_pass.modulate_native(low, gamma, guide, scale, shift)
        pooled, taps = modulation_pass.modulate_pool_taps_native(low, gamma, guide, scale,
                                                                 shift, kernel, pool=pool)
        assert taps.shape == (objects, height, width, 9) and taps.dtype == tf.float32
        if pool:
            expected = tf.nn.max_pool2d(m, 2, 2, "SAME")
            assert pooled.shape == expected.shape and pooled.dtype == dtype
            # The max of the same rounded values: identical bits.
            bits = tf.uint16 if dtype == tf.bfloat16 else tf.uint32
            np.testing.assert_array_equal(tf.bitcast(pooled, bits).numpy(),
                                          tf.bitcast(expected, bits).numpy())
        else:
            assert pooled is None
        # Taps of the rounded modulated map with the kernel in the same precision, summed in
        # float32 (numpy in float64 as the reference).
        rounded_kernel = tf.cast(tf.cast(kernel, dtype), tf.float64).numpy()
        reference = np.einsum("bhwc,ct->bhwt", tf.cast(m, tf.float64).numpy(), rounded_kernel)
        np.testing.assert_allclose(taps.numpy(), reference, rtol=1e-5,
                                   atol=1e-5 * np.abs(reference).max())


@needs_compiler
def test_single_op_block_end_rejects_a_bad_taps_kernel():
    x, gamma, guide, scale, shift = pass_inputs(1, 1, 4, 5, 8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="taps_kernel must be"):
        modulation_pass.modulate_pool_taps_native(x, gamma, guide, scale, shift,
                                                  tf.zeros((7, 9)))


@needs_compiler
def test_native_pass_rejects_inconsistent_shapes():
    x, gamma, guide, scale, shift = pass_inputs(2, 3, 4, 5, 8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be 1 or K = 3"):
        modulation_pass.modulate_native(x, gamma, guide, scale, shift)
    x, gamma, guide, scale, shift = pass_inputs(1, 1, 4, 5, 8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="guide must be"):
        modulation_pass.modulate_native(x, gamma, guide[:, :3], scale, shift)
    with pytest.raises(tf.errors.InvalidArgumentError, match="gamma must be"):
        modulation_pass.modulate_native(x, gamma[:, :4], guide, scale, shift)


@needs_compiler
def test_library_is_cached_by_content_and_rebuilt_for_a_changed_source(tmp_path, monkeypatch):
    monkeypatch.setenv(build.CACHE_ENV, str(tmp_path / "cache"))
    sources = tmp_path / "src"
    sources.mkdir()
    (sources / "modulate_op.cc").write_bytes((build.SOURCE_DIR / "modulate_op.cc").read_bytes())
    monkeypatch.setattr(build, "SOURCE_DIR", sources)
    first = build.build("modulate_op")
    assert first.exists() and first.parent == tmp_path / "cache"
    stamp = first.stat().st_mtime_ns
    assert build.build("modulate_op") == first and first.stat().st_mtime_ns == stamp
    (sources / "modulate_op.cc").write_text(
        (sources / "modulate_op.cc").read_text() + "\n// edited\n")
    assert build.library_path("modulate_op") != first
    # Nothing but finished libraries in the cache (no temporary files left behind).
    assert [p.suffix for p in (tmp_path / "cache").iterdir()] == [".so"]


def test_failed_build_leaves_nothing_and_falls_back_to_xla(tmp_path, monkeypatch):
    monkeypatch.setenv(build.CACHE_ENV, str(tmp_path / "cache"))
    sources = tmp_path / "src"
    sources.mkdir()
    (sources / "broken_op.cc").write_text("this is not C++;\n")
    monkeypatch.setattr(build, "SOURCE_DIR", sources)
    if build.compiler() is not None:
        with pytest.raises(RuntimeError, match="failed on broken_op.cc: .*error"):
            build.build("broken_op")
        assert list((tmp_path / "cache").iterdir()) == []
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    op, reason = build._load_uncached("broken_op")
    assert op is None and "no C++ compiler found" in reason and "no-such-compiler" in reason


def test_unavailable_native_kernel_is_explained(monkeypatch):
    monkeypatch.setenv(build.ENABLE_ENV, "0")
    monkeypatch.setattr(build, "_loaded", {})
    assert modulation_pass.native_status() == (False, f"disabled by {build.ENABLE_ENV}=0")
    assert modulation_pass.resolve_kernel("auto", jit_compile=False) == "xla"
    with pytest.raises(UserError, match="native modulation kernel is unavailable: disabled"):
        modulation_pass.resolve_kernel("native", jit_compile=False)


def test_auto_keeps_xla_without_the_fast_path(monkeypatch):
    monkeypatch.setattr(modulation_pass, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert modulation_pass.resolve_kernel("auto", jit_compile=False) == "xla"


@needs_compiler
def test_auto_picks_native_with_the_fast_path(monkeypatch):
    monkeypatch.setattr(modulation_pass, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert modulation_pass.resolve_kernel("auto", jit_compile=False) == "native"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path, monkeypatch):
    from osmn.kernels import cpu  # noqa: PLC0415
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx512f "
                    "avx512_bf16 amx_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    monkeypatch.setattr(cpu, "CPUINFO", info)
    cpu._cpuinfo.cache_clear()
    try:
        assert cpu.cpu_flags() == frozenset({"fpu", "avx512f", "avx512_bf16", "amx_bf16"})
        assert cpu.cpu_model() == "Test CPU 9000"
    finally:
        cpu._cpuinfo.cache_clear()


def test_kernel_choice_is_checked():
    assert modulation_pass.resolve_kernel("xla", jit_compile=False) == "xla"
    assert modulation_pass.resolve_kernel("auto", jit_compile=True) == "xla"
    with pytest.raises(UserError, match="cannot run inside an XLA-compiled function"):
        modulation_pass.resolve_kernel("native", jit_compile=True)
    with pytest.raises(UserError, match="must be one of"):
        modulation_pass.resolve_kernel("cuda", jit_compile=False)


@needs_compiler
def test_bfloat16_frames_agree_with_either_kernel_and_trace_once():
    model = OSMN({"width_multiplier": 1 / 16})
    randomize(model, seed=7)
    native = LocalEngine(model, "bfloat16", modulation_kernel="native")
    assert native.modulation_kernel == "native"
    xla = LocalEngine(model, "bfloat16", modulation_kernel="xla")
    separate = LocalEngine(model, "bfloat16", modulation_kernel="native",
                           single_op_block_ends=False)
    exact = LocalEngine(model, "float32", jit_compile=False, modulation_kernel="xla")
    rng = np.random.default_rng(7)
    for k, (height, width) in [(1, (33, 47)), (3, (40, 56))]:
        image = tf.constant(rng.normal(0, 50, (1, height, width, 3)), tf.float32)
        spatial = tf.constant(rng.uniform(0, 1, (k, height, width, 1)), tf.float32)
        gammas = native.gamma(tf.constant(rng.normal(0, 50, (k, 224, 224, 3)), tf.float32))
        expected, _ = xla.segment(image, spatial, gammas)
        # The native pass alone is the XLA pass bit for bit.
        np.testing.assert_array_equal(separate.segment(image, spatial, gammas)[0].numpy(),
                                      expected.numpy())
        # The single-op block ends take the side taps in float32 instead of bfloat16: as close to
        # the float32 frame as the XLA pass is, or closer.
        actual, masks = native.segment(image, spatial, gammas)
        reference = exact.segment(image, spatial, gammas)[0].numpy()
        assert np.abs(actual.numpy() - expected.numpy()).max() < 0.02
        assert (np.abs(actual.numpy() - reference).mean()
                <= np.abs(expected.numpy() - reference).mean() * 1.05)
        assert actual.numpy().std() > 1e-4  # not a constant map
    assert native.trace_count == 1


@needs_compiler
def test_native_kernel_without_a_visual_modulator_serves_several_objects():
    model = OSMN({"width_multiplier": 1 / 16, "use_visual_modulator": False})
    randomize(model, seed=3)
    rng = np.random.default_rng(3)
    image = tf.constant(rng.normal(0, 50, (1, 24, 32, 3)), tf.float32)
    spatial = tf.constant(rng.uniform(0, 1, (2, 24, 32, 1)), tf.float32)
    gammas = tf.ones((2, model.gamma_size))
    native = LocalEngine(model, "float32", jit_compile=False, modulation_kernel="native")
    xla = LocalEngine(model, "float32", jit_compile=False, modulation_kernel="xla")
    actual, expected = native.segment(image, spatial, gammas)[0], xla.segment(image, spatial,
                                                                               gammas)[0]
    assert actual.shape == (2, 24, 32, 1)
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)

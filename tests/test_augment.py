"""Augmenter: shifts are exact whole-pixel moves within range, rotations match
np.rot90 at 90 degrees, the identity is exact, and bad arguments are refused."""

import numpy as np
import pytest

from nnscratch.augment import Augmenter, random_affine, random_shift
from nnscratch.errors import ConfigError, ShapeError


def shifted(image, dy, dx):
    """image (C, H, W) moved down by dy and right by dx, zeros coming in (the definition)."""
    c, h, w = image.shape
    out = np.zeros_like(image)
    for y in range(h):
        for x in range(w):
            sy, sx = y - dy, x - dx
            if 0 <= sy < h and 0 <= sx < w:
                out[:, y, x] = image[:, sy, sx]
    return out


def test_random_shift_moves_each_image_by_its_own_offset_within_range():
    rng = np.random.default_rng(0)
    x = rng.random((30, 2, 9, 8), dtype=np.float32) + 0.5  # no zero pixels: the offset is unique
    before = x.copy()
    y = random_shift(x, 2, np.random.default_rng(1))
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(x, before)  # input untouched
    offsets = set()
    for img, out in zip(x, y):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(out, shifted(img, dy, dx))]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 5  # offsets really vary over the batch


def test_augmenter_is_reproducible_and_uses_the_given_rng():
    x = np.random.default_rng(2).random((10, 1, 28, 28), dtype=np.float32)
    a = Augmenter(max_shift=3, seed=5)(x)
    b = Augmenter(max_shift=3, seed=5)(x)
    np.testing.assert_array_equal(a, b)
    aug = Augmenter(max_shift=2, rotation=10, scale=0.1)
    np.testing.assert_array_equal(aug(x, np.random.default_rng(9)), aug(x, np.random.default_rng(9)))
    assert not np.array_equal(aug(x, np.random.default_rng(9)), aug(x, np.random.default_rng(10)))


def test_zero_augmentation_is_the_identity():
    x = np.random.default_rng(3).random((4, 1, 6, 6))
    np.testing.assert_array_equal(Augmenter(max_shift=0)(x), x)
    np.testing.assert_allclose(random_affine(x, np.random.default_rng(0)), x, atol=1e-12)


class _Fixed:
    """A stand-in Generator whose uniform() always returns the upper bound."""

    def uniform(self, low, high, size):
        return np.full(size, high, dtype=float)


def test_rotation_by_90_degrees_matches_rot90():
    x = np.random.default_rng(4).random((3, 2, 7, 7))
    y = random_affine(x, _Fixed(), rotation=90.0)
    assert np.allclose(y, np.rot90(x, 1, axes=(2, 3)), atol=1e-9) or \
        np.allclose(y, np.rot90(x, -1, axes=(2, 3)), atol=1e-9)


def test_subpixel_shift_interpolates_linearly():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0
    y = random_affine(x, _Fixed(), max_shift=0.5)  # half a pixel down and right
    np.testing.assert_allclose(y[0, 0, 2:4, 2:4], [[0.25, 0.25], [0.25, 0.25]], atol=1e-12)
    assert y.sum() == pytest.approx(1.0)


def test_small_rotations_keep_a_centred_digit_inside():
    x = np.zeros((50, 1, 28, 28), np.float32)
    x[:, :, 8:20, 12:16] = 1.0
    y = Augmenter(max_shift=2, rotation=10, scale=0.1, seed=0)(x)
    assert y.dtype == np.float32 and y.min() >= 0 and y.max() <= 1 + 1e-6
    np.testing.assert_allclose(y.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)), rtol=0.25)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="max_shift"):
        Augmenter(max_shift=-1)
    with pytest.raises(ConfigError, match="max_shift"):
        Augmenter(max_shift=1.5)
    with pytest.raises(ConfigError, match="rotation"):
        Augmenter(rotation=-3)
    with pytest.raises(ConfigError, match="scale"):
        Augmenter(scale=1.5)
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        Augmenter()(np.zeros((4, 784), np.float32))
    with pytest.raises(ShapeError, match="floating-point"):
        Augmenter()(np.zeros((4, 1, 28, 28), np.uint8))


def test_works_as_the_trainer_augment_hook():
    from nnscratch.models.conv import SimpleConvNet
    from nnscratch.optimizers import Adam
    from nnscratch.training import Trainer

    rng = np.random.default_rng(6)
    x = rng.random((20, 1, 12, 12), dtype=np.float32)
    t = rng.integers(0, 2, 20)
    net = SimpleConvNet(input_dim=(1, 12, 12), conv_param={"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1},
                        hidden_size=4, output_size=2, seed=0)
    calls = []
    aug = Augmenter(max_shift=1)

    def hook(batch, gen):
        calls.append(batch.shape)
        return aug(batch, gen)

    Trainer(net, Adam(), x, t, epochs=1, batch_size=10, augment=hook).fit()
    assert calls == [(10, 1, 12, 12)] * 2


def test_augmentation_is_switchable_in_training():
    """Off (augment=None, or an augmenter that changes nothing) trains on the exact images; on changes them."""
    from nnscratch.models.conv import SimpleConvNet
    from nnscratch.optimizers import Adam
    from nnscratch.training import Trainer

    rng = np.random.default_rng(7)
    x = rng.random((20, 1, 10, 10), dtype=np.float32)
    t = rng.integers(0, 2, 20)

    def trained(augment):
        net = SimpleConvNet(input_dim=(1, 10, 10), conv_param={"filter_num": 2, "filter_size": 3, "pad": 0,
                                                               "stride": 1},
                            hidden_size=4, output_size=2, weight_init_std=0.3, seed=0)
        Trainer(net, Adam(lr=0.01), x, t, epochs=1, batch_size=10, seed=0, augment=augment).fit()
        return net.params["W1"]

    off = trained(None)
    np.testing.assert_array_equal(trained(Augmenter(max_shift=0)), off)
    assert not np.array_equal(trained(Augmenter(max_shift=2)), off)
    assert not np.array_equal(trained(Augmenter(max_shift=0, rotation=20)), off)


def test_random_shift_checks_max_shift():
    x = np.zeros((1, 1, 4, 4), np.float32)
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="max_shift"):
            random_shift(x, bad, np.random.default_rng(0))
    assert Augmenter(rotation=np.float32(5)).rotation == 5.0

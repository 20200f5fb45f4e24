import numpy as np
import pytest
import soundfile as sf

from explbench.core.audio import AudioError, load, validate

SR = 22050


def tone(n=SR, sr=SR):
    t = np.arange(n) / sr
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_valid_audio_passes_unchanged():
    a = tone()
    np.testing.assert_array_equal(validate(a, SR, expected_rate=SR, min_samples=100), a)


@pytest.mark.parametrize("bad, pattern", [
    (np.full(SR, np.nan, np.float32), "NaN or infinite"),
    (np.r_[tone(), np.inf].astype(np.float32), "first at sample 22050"),
    (np.zeros(SR, np.float32), "silent"),
    (tone(1000), "1000 samples .* one excerpt needs 36934"),
    (np.stack([tone(), tone()]), "2 channels.*mono"),
    (np.zeros(0, np.float32), "empty"),
])
def test_bad_audio_gets_a_clear_error(bad, pattern):
    with pytest.raises(AudioError, match=pattern):
        validate(bad, SR, expected_rate=SR, min_samples=36934, name="clip.wav")


def test_other_sample_rates_are_resampled():
    a = tone(44100, 44100)
    out = validate(a, 44100, expected_rate=SR)
    assert abs(len(out) - SR) <= 2
    spec = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spec) * SR / len(out) - 440) < 3  # the tone stays at 440 Hz


def test_integer_pcm_is_scaled():
    a = (tone() * 32767).astype(np.int16)
    out = validate(a, SR, expected_rate=SR)
    assert out.dtype == np.float32 and 0.29 < np.abs(out).max() < 0.31


def test_files(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, tone(), SR)
    assert load(good, expected_rate=SR).shape == (SR,)
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([tone(), tone()], axis=1), SR)
    with pytest.raises(AudioError, match="2 channels"):
        load(stereo, expected_rate=SR)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="cannot read audio file"):
        load(junk, expected_rate=SR)
    with pytest.raises(AudioError, match="does not exist"):
        load(tmp_path / "missing.wav", expected_rate=SR)

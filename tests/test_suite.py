import pytest

from explbench import suite


def write(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return str(p)


def test_presets_load_and_validate():
    for name in ("smoke", "default", "paper"):
        c = suite.load(name)
        assert c.task == "svd-synth" and c.explainers and c.generators


def test_malformed_toml_names_file_and_line(tmp_path):
    path = write(tmp_path, 'name = "x"\nseed = = 3\n')
    with pytest.raises(suite.SuiteError, match=r"s\.toml: not valid TOML: .*line 2"):
        suite.load(path)


def test_unknown_setting_names_line_and_key(tmp_path):
    path = write(tmp_path, 'name = "x"\nexplainers = ["random"]\nsede = 3\n[generator.localized]\nks=[1]\n')
    with pytest.raises(suite.SuiteError, match=r"line 3: key 'sede': unknown setting"):
        suite.load(path)


def test_unknown_explainer_lists_known(tmp_path):
    path = write(tmp_path, 'explainers = ["lime", "limey"]\n[generator.cw-spectrogram]\nn = 2\n')
    with pytest.raises(suite.SuiteError, match=r"line 1: key 'explainers': unknown explainer 'limey'.*Known explainers: .*lime"):
        suite.load(path)


def test_bad_explainer_parameter_names_table_line(tmp_path):
    path = write(tmp_path, 'explainers = ["lime"]\n[explainer.lime]\nn_sample = 5\n'
                 '[generator.cw-spectrogram]\nn = 2\n')
    with pytest.raises(suite.SuiteError, match=r"line 3: key 'n_sample': 'lime' takes no such parameter.*n_samples"):
        suite.load(path)


def test_derived_generator_needs_its_parent(tmp_path):
    path = write(tmp_path, 'explainers = ["random"]\n[generator.localized]\nfrom = ["cw-waveform"]\n')
    with pytest.raises(suite.SuiteError, match="derives from 'cw-waveform'"):
        suite.load(path)


def test_override_keeps_valid_config():
    c = suite.override(suite.load("smoke"), explainers=["random"], seed=5)
    assert c.explainers == ["random"] and c.seed == 5 and "lime" not in c.explainer_params

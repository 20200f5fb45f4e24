import re

import pytest

from explbench.run import suite_files as suite


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


BASE = 'explainers = ["random"]\n[generator.cw-spectrogram]\nn = 4\n'


@pytest.mark.parametrize("line,key,words", [
    ('budget = "lots"', "budget", "whole number of model queries"),
    ("budget = 0", "budget", "at least 1"),
    ("n_boot = -1", "n_boot", "at least 100"),
    ("agnostic_samples = 2", "agnostic_samples", "0 (off)"),
    ('split = "tset"', "split", "splits train, valid, test"),
    ("seed = -1", "seed", "integer from 0"),
    ("timeout = -5", "timeout", "seconds"),
    ('aggregation = "max"', "aggregation", "sum, mean, mean_pos, mean_abs"),
    ('extra_aggregations = ["mean_abs", "mean_abs"]', "extra_aggregations", "twice"),
    ("power_discordance = 0", "power_discordance", "(0, 1]"),
])
def test_top_level_values_are_checked_with_their_line(tmp_path, line, key, words):
    path = write(tmp_path, f"{line}\n{BASE}")
    with pytest.raises(suite.SuiteError, match=rf"line 1: key '{key}': .*{re.escape(words)}"):
        suite.load(path)


@pytest.mark.parametrize("param,key,words", [
    ('eps = "big"', "eps", "must be a number, got 'big'"),
    ("batch_size = 0", "batch_size", "must be positive"),
    ("n = 2.5", "n", "whole number of cases"),
    ("per_cluster = 0", "per_cluster", "at least 1"),
    ("max_iter = 1.5", "max_iter", "an integer"),
])
def test_generator_values_are_checked_against_the_constructor(tmp_path, param, key, words):
    path = write(tmp_path, f'explainers = ["random"]\n[generator.cw-spectrogram]\n{param}\n')
    with pytest.raises(suite.SuiteError, match=rf"line 3: key '{key}': .*{re.escape(words)}"):
        suite.load(path)


def test_generator_constructor_errors_name_the_key(tmp_path):
    path = write(tmp_path, 'explainers = ["random"]\n[generator.planted]\nn = 2\npattern = "beep"\n')
    with pytest.raises(suite.SuiteError, match=r"line 4: key 'pattern': 'planted': unknown pattern 'beep'"):
        suite.load(path)


def test_ks_beyond_the_grid_and_per_cluster_on_derived_generators_are_refused(tmp_path):
    path = write(tmp_path, 'explainers = ["random"]\n[generator.cw-spectrogram]\nn = 2\n'
                 '[generator.localized]\nfrom = ["cw-spectrogram"]\nks = [1, 30]\n')
    with pytest.raises(suite.SuiteError, match=r"key 'ks': asks for up to 30 segments.*only 20"):
        suite.load(path)


def test_task_params_are_checked_against_the_task(tmp_path):
    path = write(tmp_path, f'{BASE}[task-params]\nweight = "m.safetensors"\n')
    with pytest.raises(suite.SuiteError, match=r"key 'weight': 'svd-synth' takes no such parameter.*weights"):
        suite.load(path)
    path = write(tmp_path, f'{BASE}[task-params]\nsong_duration = "long"\n')
    with pytest.raises(suite.SuiteError, match=r"key 'song_duration': .*must be a number"):
        suite.load(path)


def test_stored_config_from_another_version_is_refused_by_name():
    with pytest.raises(suite.SuiteError, match="unknown setting.*'wobble'"):
        suite.SuiteConfig.from_dict({"name": "x", "wobble": 1})
    c = suite.SuiteConfig.from_dict({"name": "x"})  # keys an older version lacked: defaults
    assert c.aggregation == "mean" and c.extra_aggregations == [] and c.power_discordance == 0.4


def test_zero_cases_cannot_be_asked_for(tmp_path):
    path = write(tmp_path, 'explainers = ["random"]\n[generator.cw-spectrogram]\nn = 0\n')
    with pytest.raises(suite.SuiteError, match=r"key 'n': must be a whole number of cases, at least 1"):
        suite.load(path)

"""The command line's wiring: every job's commands module registered the same way, and
`--print-config` (nothing here trains or reads a catalog)."""

import subprocess
import sys

import pytest
import yaml

from genre_tagger import cli
from genre_tagger.config import load_config
from genre_tagger.recommend.training import load_recommend_config
from genre_tagger.upgrade import upgrade_config


def _subcommands(parser) -> dict:
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_every_command_belongs_to_exactly_one_module_and_runs_there():
    registered = _subcommands(cli.build_parser())
    owned = [command for module in cli.COMMAND_MODULES for command in module.COMMANDS]
    assert sorted(owned) == sorted(registered), "a module's COMMANDS and its parsers disagree"
    assert len(owned) == len(set(owned))
    for module in cli.COMMAND_MODULES:
        for command in module.COMMANDS:
            assert cli.command_module(command) is module
    assert set(cli.INTERRUPT_HINTS) <= set(owned)
    assert {"train", "ablate", "tag"} <= set(cli.INTERRUPT_HINTS)


def test_building_the_parser_imports_neither_torch_nor_lightning():
    code = ("import sys; import genre_tagger.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('torch', 'pytorch_lightning', 'lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_print_config_of_train_is_the_merged_upgraded_config(tmp_path, capsys):
    run_dir = tmp_path / "run"
    status = cli.main(["train", "--manifest", "unused.jsonl", "--output", str(run_dir), "--config", "model/fusion_mean",
                       "--modalities", "audio,text", "--wandb", "disabled", "--print-config"])
    assert status == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    expected = upgrade_config(load_config(["model/fusion_mean"]))
    expected["modalities"] = ["audio", "text"]
    expected["logger"]["wandb"]["mode"] = "disabled"
    assert printed == expected
    assert not run_dir.exists(), "--print-config must not start the run"


def test_print_config_of_ablate(tmp_path, capsys):
    assert cli.main(["ablate", "--manifest", "unused.jsonl", "--output", str(tmp_path / "out"),
                     "--config", "model/plain", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == upgrade_config(load_config(["model/plain"]))
    assert not (tmp_path / "out").exists()


def test_print_config_of_train_recommender(tmp_path, capsys):
    assert cli.main(["train-recommender", "--checkpoint", "unused.ckpt", "--manifest", "unused.jsonl",
                     "--events", "unused.jsonl", "--output", str(tmp_path / "out"), "--config", "recommend/tiny",
                     "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == load_recommend_config(["recommend/tiny"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["train", "--modalities", "bogus"], "--modalities"),
    (["train", "--config", "no/such/overlay"], "not found"),
])
def test_print_config_reports_input_errors_with_status_2(tmp_path, capsys, argv, message):
    command, *rest = argv
    status = cli.main([command, "--manifest", "m", "--output", str(tmp_path / "o"), *rest, "--print-config"])
    assert status == 2
    assert message in capsys.readouterr().err


def test_decoding_workers_default_to_one_per_usable_core(monkeypatch, capsys):
    from genre_tagger.cpus import MAX_AUTO_WORKERS, worker_count

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(6)), raising=False)
    assert worker_count("auto") == worker_count(None) == 6
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert worker_count("auto") == MAX_AUTO_WORKERS
    assert worker_count(0) == 0 and worker_count("3") == 3
    for bad in (-1, "many", 2.5, True):
        with pytest.raises(ValueError, match="num_workers"):
            worker_count(bad)
    parser = cli.build_parser()
    assert parser.parse_args(["tag", "--checkpoint", "c", "--manifest", "m", "--output", "o"]).num_workers == 8
    assert parser.parse_args(["tag", "--checkpoint", "c", "--manifest", "m", "--output", "o",
                              "--num-workers", "1"]).num_workers == 1
    with pytest.raises(SystemExit):
        parser.parse_args(["tag", "--checkpoint", "c", "--manifest", "m", "--output", "o", "--num-workers", "x"])
    assert "whole number" in capsys.readouterr().err

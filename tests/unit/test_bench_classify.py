"""`emostream bench classify` measures the packaged model by default and says what it measured."""

import json

from emostream.cli.main import build_parser, main


def test_default_model_is_the_packaged_one():
    args = build_parser().parse_args(["bench", "classify"])
    assert args.model == "default"


def test_json_names_model_trained_and_dtype(capsys):
    from emostream.models.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint

    assert (
        main(
            [
                "bench",
                "classify",
                "--json",
                "--batch-sizes",
                "1,2",
                "--dtypes",
                "fp32",
                "--seconds",
                "0.05",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    packaged = load_checkpoint(DEFAULT_CHECKPOINT)
    assert result["model"] == packaged.name and result["model_version"] == packaged.version
    assert result["trained"] is True
    assert result["dtype"] == "fp32" and result["dtypes"] == ["fp32"]


def test_random_weights_are_flagged_untrained(capsys):
    assert (
        main(
            [
                "bench",
                "classify",
                "--model",
                "rmn_compact",
                "--json",
                "--batch-sizes",
                "1",
                "--dtypes",
                "fp32",
                "--seconds",
                "0.05",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["trained"] is False

import json

from emostream.bench.fuzz import MUTATIONS, fuzz_frames, fuzz_headers
from emostream.cli.main import main


def test_fuzz_counts_every_case_and_finds_no_crash():
    result = fuzz_frames(400, seed=3)
    assert result["cases"] == 400
    assert result["crashes"] == 0, result["crash_examples"]
    decode, headers = result["decode_frame"], result["parse_headers"]
    assert decode["decoded"] + decode["invalid_total"] == 400
    assert headers["parsed"] + headers["invalid_total"] == 400
    # The mutations reach each rejection path, and some damaged images still decode.
    assert {"corrupt_image", "too_large", "empty_payload"} <= set(decode["invalid"])
    assert {"missing_headers", "bad_headers"} <= set(headers["invalid"])
    assert decode["decoded"] > 0 and headers["parsed"] > 0
    assert set(result["by_mutation"]) <= set(MUTATIONS)
    assert sum(sum(c.values()) for c in result["by_mutation"].values()) == 400


def test_fuzz_is_deterministic_per_seed():
    a, b = fuzz_frames(60, seed=7), fuzz_frames(60, seed=7)
    assert a["decode_frame"] == b["decode_frame"] and a["parse_headers"] == b["parse_headers"]
    assert a["by_mutation"] == b["by_mutation"]


def test_header_fuzzer_includes_null_values():
    import numpy as np

    rng = np.random.default_rng(0)
    values = [v for _ in range(300) for _, v in fuzz_headers(rng)]
    assert None in values  # Kafka allows null header values; they once crashed parse_headers


def test_cli_prints_json_and_exits_zero(capsys):
    assert main(["bench", "fuzz-frames", "--cases", "40", "--seed", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["benchmark"] == "fuzz-frames" and out["cases"] == 40 and out["crashes"] == 0

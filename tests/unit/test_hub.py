import time

import pytest

from emostream.cli.main import main
from emostream.models.hub import ChecksumMismatch, HubFile, HubUnavailable, pull, sha256_of


def make_mirror(tmp_path, name: str, content: bytes):
    """A directory laid out like the hub: <base>/<repo>/resolve/main/<file>."""
    base = tmp_path / "mirror"
    target = base / "phamquiluan" / "ResidualMaskingNetwork" / "resolve" / "main"
    target.mkdir(parents=True)
    (target / name).write_bytes(content)
    return f"file://{base}"


def test_pull_from_local_mirror_caches_and_pins(tmp_path):
    url = make_mirror(tmp_path, "weights.bin", b"abc" * 1000)
    cache = tmp_path / "cache"
    files = (HubFile("weights.bin", "test"),)
    paths = pull(files, cache=cache, base_url=url)
    assert paths["weights.bin"].read_bytes() == b"abc" * 1000
    pin = cache / "weights.bin.sha256"
    assert pin.read_text().strip() == sha256_of(paths["weights.bin"])
    # A later pull uses the cache (the mirror may be gone) and re-verifies the pin.
    assert pull(files, cache=cache, base_url="http://127.0.0.1:9")["weights.bin"].exists()
    paths["weights.bin"].write_bytes(b"tampered")
    with pytest.raises(ChecksumMismatch):
        pull(files, cache=cache, base_url=url)


def test_expected_checksum_enforced(tmp_path):
    url = make_mirror(tmp_path, "w.bin", b"data")
    with pytest.raises(ChecksumMismatch):
        pull((HubFile("w.bin", "t", sha256="0" * 64),), cache=tmp_path / "c", base_url=url)
    assert not (tmp_path / "c" / "w.bin").exists()


def test_offline_fails_fast_with_instructions(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(HubUnavailable) as info:
        pull(cache=tmp_path / "cache", base_url="http://127.0.0.1:9", timeout_s=2)
    assert time.monotonic() - t0 < 5
    msg = str(info.value)
    assert "place them at" in msg and "face_detection_yunet_2023mar.onnx" in msg
    assert str(tmp_path / "cache") in msg
    assert not any((tmp_path / "cache").glob("*.part"))


def test_cli_pull_offline_exit_code(tmp_path, capsys):
    rc = main(["models", "pull", "--cache-dir", str(tmp_path), "--hub-url", "http://127.0.0.1:9"])
    assert rc == 2
    assert "Offline?" in capsys.readouterr().err

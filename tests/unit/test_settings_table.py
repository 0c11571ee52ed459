"""README.md's configuration table is generated from the settings models: it lists every setting,
only settings, and every variable the deploy files set."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_FILES = [
    ROOT / "docker-compose.yml",
    ROOT / ".env.example",
    *sorted((ROOT / "deploy").rglob("*.yaml")),
]


def _script():
    spec = importlib.util.spec_from_file_location(
        "settings_table", ROOT / "scripts" / "settings_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_is_in_the_readme_table_and_nothing_else():
    table = _script()
    documented = table.documented_variables((ROOT / "README.md").read_text())
    settings = list(table.settings_rows())
    assert len(documented) == len(set(documented)), "a variable is listed twice"
    missing = sorted(set(settings) - set(documented))
    absent = sorted(set(documented) - set(settings))
    assert not missing, (
        f"settings missing from README.md (run scripts/settings_table.py): {missing}"
    )
    assert not absent, f"README.md documents settings that do not exist: {absent}"


def test_readme_table_is_up_to_date():
    table = _script()
    readme = (ROOT / "README.md").read_text()
    assert table.updated_readme(readme) == readme, "run scripts/settings_table.py"


def test_every_variable_the_deploy_files_set_is_documented():
    documented = set(_script().documented_variables((ROOT / "README.md").read_text()))
    used = {
        (m.group(1), path.name)
        for path in DEPLOY_FILES
        for m in re.finditer(r"\b(EMOSTREAM_[A-Z0-9_]+)\b", path.read_text())
    }
    assert used, "no EMOSTREAM_ variable found in the deploy files"
    undocumented = sorted((name, where) for name, where in used if name not in documented)
    assert not undocumented, undocumented


def test_table_rows_name_defaults_readers_and_secrets():
    rows = _script().settings_rows()
    default, readers, text = rows["EMOSTREAM_KAFKA__SASL_PASSWORD"]
    assert default == "none" and set(readers) >= {"ingest", "worker", "aggregator"}
    assert "Secret" in text
    assert rows["EMOSTREAM_KAFKA__SECURITY_PROTOCOL"][2].endswith(
        "One of `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`."
    )
    assert rows["EMOSTREAM_REDIS__URL"][1] == ["ingest", "aggregator", "demo"]  # fleet status


def test_a_missing_or_invented_row_is_caught():
    table = _script()
    readme = (ROOT / "README.md").read_text()
    row = next(
        line for line in readme.splitlines() if line.startswith("| `EMOSTREAM_KAFKA__SSL_CA_FILE`")
    )
    dropped = readme.replace(row + "\n", "")
    assert "EMOSTREAM_KAFKA__SSL_CA_FILE" not in table.documented_variables(dropped)
    invented = readme.replace(row, row + "\n| `EMOSTREAM_KAFKA__SSL_CA_PATH` | none | x | |")
    assert "EMOSTREAM_KAFKA__SSL_CA_PATH" in table.documented_variables(invented)
    assert table.updated_readme(dropped) == table.updated_readme(invented) == readme

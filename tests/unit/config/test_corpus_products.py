"""A corpus product's config: its `corpus:` rules checked when configs load, its source a
dataset of documents, and a fingerprint that does not change from one process to the next."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from databourse.config import load_config
from databourse.errors import ConfigError

REPO_CONFIGS = Path(__file__).resolve().parents[3] / "configs"
PRODUCT = "products/my-chat-corpus.yaml"


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO_CONFIGS, tmp_path / "configs")
    return tmp_path / "configs"


def _problems(cfg: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(cfg)
    return str(caught.value)


def test_bad_corpus_rules_and_sources_are_named_by_file_and_key(tmp_path: Path) -> None:
    cfg = _copy(tmp_path)
    product = cfg / PRODUCT
    text = product.read_text()
    product.write_text(text.replace("leftover_limit: 0.005", "leftover_limit: 2"))
    assert "my-chat-corpus.yaml: corpus.leftover_limit" in _problems(cfg)
    product.write_text(text.replace("  dedup: {threshold: 0.8}\n", "  dedup: {treshold: 0.8}\n"))
    assert "my-chat-corpus.yaml: corpus.dedup" in _problems(cfg)
    product.write_text(text.replace("type: corpus\n", ""))
    assert "type 'corpus' needs a corpus: section, and only it has one" in _problems(cfg)
    product.write_text(text + "columns: {text: keep}\n")
    assert "a corpus has no columns: or privacy:" in _problems(cfg)
    product.write_text(text.replace("dataset: chat_transcripts", "dataset: sensor_readings")
                       .replace("my-chatdesk", "my-buildops"))  # fmt: skip
    assert "my-chat-corpus.yaml: source.dataset: has no `text` column" in _problems(cfg)
    product.write_text(text)
    provider = cfg / "providers" / "my-chatdesk.yaml"
    provider.write_text(
        provider.read_text().replace("name: consent, type: bool", "name: consent, type: string")
    )
    assert "column consent is string, not bool" in _problems(cfg)


def test_a_table_product_still_needs_a_column_rule(tmp_path: Path) -> None:
    cfg = _copy(tmp_path)
    product = cfg / "products" / "kl-building-environment.yaml"
    text = product.read_text()
    start, end = text.index("columns:\n"), text.index("privacy:\n")
    product.write_text(text[:start] + "columns: {}\n" + text[end:])
    assert "columns: needs at least one column rule" in _problems(cfg)


def test_the_fingerprint_of_a_corpus_product_is_the_same_in_every_process() -> None:
    """Its rules hold sets (languages, licences, opt-outs): their order in JSON changes with
    each process's string hashing, the fingerprint (part of every content hash) must not."""
    code = (
        "from databourse.config import load_config; import sys; from pathlib import Path; "
        "print(load_config(Path(sys.argv[1])).product('my-chat-corpus').fingerprint())"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", code, str(REPO_CONFIGS)],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        for seed in (1, 2, 3, 4)
    }  # fmt: skip
    assert len(prints) == 1 and len(next(iter(prints))) == 64

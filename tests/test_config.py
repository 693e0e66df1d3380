"""Settings: defaults, TOML file, VOXLOOP_* environment, readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxloop.config import Settings, load_settings
from voxloop.errors import ConfigError


def test_defaults_are_local_and_offline() -> None:
    settings = Settings()
    assert settings.server.host == "127.0.0.1"
    assert settings.llm.backend == "llamacpp" and settings.llm.model == "qwen2.5-0.5b"
    assert settings.stt.engine == "whisper" and settings.tts.voice == "joe"


def test_environment_beats_toml_and_overrides_beat_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "voxloop.toml"
    config.write_text('[llm]\nmodel = "smollm2-135m"\nmax_tokens = 99\n[tts]\nvoice = "jf_alpha"\n')
    monkeypatch.setenv("VOXLOOP_CONFIG", str(config))
    monkeypatch.setenv("VOXLOOP_LLM__MAX_TOKENS", "42")
    settings = load_settings()
    assert settings.llm.model == "smollm2-135m"  # from the file
    assert settings.llm.max_tokens == 42  # the environment wins over the file
    assert settings.tts.voice == "jf_alpha"
    monkeypatch.setenv("VOXLOOP_TTS__VOICE", "jm_kumo")
    explicit = load_settings(tts={"voice": "joe"}, llm={"temperature": 0.9})
    assert explicit.tts.voice == "joe"  # explicit values win over everything
    assert explicit.llm.temperature == 0.9 and explicit.llm.max_tokens == 42  # merged


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[llm\nmodel=", "not valid TOML"),
        ("[llm]\nthreads = 'many'\n", "Bad setting 'llm.threads'"),
        ("[tts]\ncolour = 'red'\n", "Bad setting 'tts.colour'"),
    ],
)
def test_bad_config_is_a_clear_error(content: str, message: str, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_sections_are_hashable_for_engine_caching() -> None:
    from voxloop.registry import Registry

    built: list[object] = []
    registry: Registry[object] = Registry("test engine")
    registry.register("engine")(lambda section: built.append(section) or object())
    # Two sections read separately, both alive: equal settings are one cache key.
    first = Settings().llm
    second = first.model_copy()
    assert first is not second and hash(first) == hash(second)
    assert registry.get("engine", first) is registry.get("engine", second)
    other = first.model_copy(update={"model": "smollm2-135m"})
    assert registry.get("engine", other) is not registry.get("engine", first)
    assert built == [first, other]  # each distinct setting built its engine once


def test_printed_config_is_valid_toml_that_reads_back_the_same(tmp_path: Path) -> None:
    from voxloop.config import to_toml

    settings = load_settings(llm={"model": "smollm2-135m"}, stt={"language": "fr"})
    config = tmp_path / "printed.toml"
    config.write_text(to_toml(settings))
    assert load_settings(config) == settings
    assert "Bind address; loopback unless told otherwise." in to_toml(settings)


def test_printed_config_hides_a_database_password() -> None:
    from voxloop.config import to_toml

    url = "postgresql://voxloop:s3cret@db.internal:5432/voxloop"
    printed = to_toml(load_settings(memory={"url": url}))
    assert "s3cret" not in printed
    assert 'url = "postgresql://voxloop:***@db.internal:5432/voxloop"' in printed

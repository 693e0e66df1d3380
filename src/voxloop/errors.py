"""Typed errors whose messages are written for the person who reads them."""


class VoxloopError(Exception):
    """Base class: str(error) is a one-line message a person can act on."""


class BadAudio(VoxloopError):
    """The input could not be used as audio (empty, not audio, unreadable)."""


class NoSpeech(BadAudio):
    """The audio decoded fine but holds no speech."""


class BadText(VoxloopError):
    """The text could not be used (empty, nothing speakable, too long)."""


class AudioTooLong(BadAudio):
    """The audio or file is over a configured limit."""


class ModelUnavailable(VoxloopError):
    """A model file or runtime is missing or corrupt."""


class BackendDown(VoxloopError):
    """A remote engine (an OpenAI-compatible server) failed or is unreachable."""


class StoreUnavailable(VoxloopError):
    """The conversation store (a PostgreSQL server) cannot be reached for now."""


class ConfigError(VoxloopError):
    """A setting names something that does not exist (engine, voice, file)."""

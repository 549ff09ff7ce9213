"""Testing toolkit: drive a bot like a user and assert what it does.

* :class:`Conversation` (:mod:`lifecycle.testing.conversation`): ``say``, ``play``, ``press``,
  ``expect`` and ``record`` on a READY :class:`~lifecycle.PipecatClient`.
* :mod:`lifecycle.testing.scenario`: pipecat.evals' scenario files (whole), read and validated;
  :mod:`lifecycle.testing.scripted` runs scripted ones on a READY client as pipecat.evals'
  driver does, with the judges of :mod:`lifecycle.testing.judge`;
  :mod:`lifecycle.testing.junit` reports them (``pipecat-lifecycle test``).
* :mod:`lifecycle.testing.voice`: the caller's voice (:data:`Voice`, :func:`local_voice`:
  espeak-ng, extra ``voice``); :mod:`lifecycle.testing.recording`: two-sided recordings.
* :mod:`lifecycle.testing.audio`: WAV I/O (soundfile), resampling (soxr), real-time pacing.
* :class:`ModelEndpoint` (:mod:`lifecycle.testing.model`): an OpenAI-compatible chat-completions
  endpoint; the model client there serves judges and simulated callers.
* :class:`SimulatedCaller` / :class:`SimulationResult` (:mod:`lifecycle.testing.simulation`): a
  model plays the caller (persona, goal), a judge decides; simulation files in
  :mod:`lifecycle.testing.simulation_file`.
* :mod:`lifecycle.testing.pytest_plugin`: the ``pipecat_bot`` / ``pipecat_client`` fixtures.

Audio needs the ``testing`` extra (soundfile, soxr, numpy; scenario files also PyYAML):
``pip install "pipecat-lifecycle[testing]"``. ``import lifecycle`` never imports this package.
"""

from lifecycle.testing.conversation import DEFAULT_WITHIN, Conversation, event_text
from lifecycle.testing.model import ModelEndpoint
from lifecycle.testing.simulation import SimulatedCaller, SimulationResult
from lifecycle.testing.voice import Voice, local_voice

__all__ = [
    "DEFAULT_WITHIN",
    "Conversation",
    "ModelEndpoint",
    "SimulatedCaller",
    "SimulationResult",
    "Voice",
    "event_text",
    "local_voice",
]
